"""Whisper over many clips at once: the encoder spends its time on speech, not padding.

faster-whisper's ``WhisperModel.transcribe`` handles one clip; its ``BatchedInferencePipeline``
batches the VAD chunks of *one* clip but drops the temperature fallback and the re-decoding
of a window whose last sentence was cut off (measured on shared/data: "...by means of
movable" instead of "...movable types."). This module runs the sequential algorithm of
``WhisperModel.generate_segments`` for a list of clips in lock-step, one window per clip
per round:

1. Silero VAD keeps the speech of each clip (``vad_filter=True``, default ``VadOptions``).
2. Each round encodes one window per active clip. Whisper always reads a 30 s window, but
   a voice note holds a few seconds of speech, and the encoder's cost grows faster than its
   input (self-attention over 1500 positions: on 2 CPU cores a 30 s window takes 0.61 s, a
   10 s one 0.11 s). So a clip whose speech fits in a *short window* (:data:`SHORT_WINDOWS_S`,
   the speech followed by :data:`TAIL_PAD_S` of silence, as the 30 s window has after a
   short note) is encoded at that length; CTranslate2's Whisper takes any length up to 30 s,
   and timestamps keep their 0.02 s steps. The length depends on the clip alone, never on
   its batch-mates, so a note's words are the same in any batch. Other clips, and every
   clip when ``short_windows`` is off, get faster-whisper's 30 s windows. On CPU the
   encoder runs window by window (batching it was no faster on 2 cores and holds more
   memory); on CUDA in one batch per window length. Round 1 also picks each clip's
   language from its own encoder output (restricted to the allowed languages), so the
   encoder runs once per window instead of twice.
3. The windows are decoded together with beam search in one ``generate`` call per prompt
   length and window length (CTranslate2 needs ``<|startoftranscript|>`` at the same
   position in a batch, and one encoder length; the Mandarin prompt makes prompts longer).
4. Per window, as ``generate_segments`` with ``condition_on_previous_text=False``:
   temperature fallback (compression ratio > 2.4 or avg log-prob < -1: re-decoded alone
   through ``generate_with_fallback``), the no-speech skip, the split on timestamp tokens,
   and the next window starting at the last complete segment.
5. A short window is Whisper outside the input it was trained on, and it can fail in ways
   the 30 s window does not: a sentence said twice ("打开金玉良缘。打开金玉良缘。"), a
   repetition loop. A short window whose decode looks like that (:func:`_doubtful`: it
   would need the temperature fallback, repeats itself, runs to its token cap or writes far
   more tokens than its speech can hold) is not fallen back on at higher temperatures: the
   clip starts again on 30 s windows, which decode it exactly as faster-whisper would. On
   the dev recordings that was 1 note of 281 (docs/benchmarks.md).

Beam search in CTranslate2 keeps the hypotheses of each batch item apart, so a batch gives
the same tokens as the clips one by one (checked in tests/test_engine.py and
tests/test_batch_words.py on real recordings).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from inference.transcript_text import ZH_PROMPT, join_text, to_simplified
from inference.types import Clip, ModelInfo, Transcript


class WhisperAsr(Protocol):
    """What batch decoding needs of :class:`inference.asr_whisper.WhisperAsr` (named here,
    not imported, so the backend and its batch decoder do not import each other)."""

    model: Any  # faster_whisper.WhisperModel
    info: ModelInfo
    languages: list[str]
    beam_size: int
    short_windows: bool

#: WhisperModel.transcribe's defaults, which the single-clip path used.
BEST_OF = 5
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
MAX_INITIAL_TIMESTAMP = 1.0
#: Frames in one Whisper window (30 s at 100 frames/s).
WINDOW_FRAMES = 3000
#: Mel frames per second of audio.
FRAMES_PER_S = 100
#: Lengths of the short windows, in seconds: a clip gets the shortest that holds its speech
#: plus TAIL_PAD_S, else 30 s windows. Few lengths, so most notes of a batch share one beam
#: search; none under 15 s, where short notes lost and repeated words in the measurements
#: (docs/benchmarks.md, issue 21).
SHORT_WINDOWS_S = (15, 20)
#: Silence after the speech of a short window, in seconds.
TAIL_PAD_S = 3.0
#: New tokens a short window may decode: this many, plus TOKENS_PER_S per second of window.
#: Speech measured under 6 tokens a second, so only a runaway loop meets the cap.
TOKEN_SLACK = 32
TOKENS_PER_S = 12
#: More tokens per second of speech than this (text and timestamps) is a short window
#: writing what was not said; measured speech stays under 6 (docs/benchmarks.md).
MAX_TOKENS_PER_SPEECH_S = 8.0
#: Shortest piece whose repetition makes a decode doubtful: "no, no" or "哈哈哈哈" is
#: speech, a whole sentence twice over is not (a false alarm only costs a 30 s redo).
MIN_REPEATED_LETTERS = 4


@dataclass
class _ClipState:
    """Decoding state of one clip."""

    index: int
    features: np.ndarray  # (n_mels, frames) of the speech VAD kept
    content_frames: int
    #: Whether the clip is decoded in a short window (False: 30 s windows, as faster-whisper).
    short: bool = False
    seek: int = 0
    language: str = ""
    tokenizer: Any = None
    #: The tokens of the initial prompt, kept for a start again on 30 s windows.
    initial_prompt: list[int] = field(default_factory=list)
    #: Tokens of the initial prompt; emptied once a window has been decoded, as
    #: generate_segments does when it does not condition on previous text.
    prompt_tokens: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.seek >= self.content_frames

    def use_full_windows(self) -> None:
        """Start the clip again on 30 s windows (a short window's decode was doubtful)."""
        self.short = False
        self.seek = 0
        self.texts = []
        self.prompt_tokens = list(self.initial_prompt)


def speech_only(clip: np.ndarray) -> np.ndarray | None:
    """The clip with non-speech removed by Silero VAD, or None when no speech was found."""
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    speech = get_speech_timestamps(clip, VadOptions())
    if not speech:
        return None
    chunks, _ = collect_chunks(clip, speech)
    audio = np.concatenate(chunks, axis=0)
    return audio if audio.size else None


def short_window_frames(speech_frames: int) -> int | None:
    """Frames of the short window that holds ``speech_frames`` of speech and its tail of
    silence, or None when only a 30 s window does."""
    needed = speech_frames + round(TAIL_PAD_S * FRAMES_PER_S)
    for seconds in SHORT_WINDOWS_S:
        if needed <= seconds * FRAMES_PER_S:
            return seconds * FRAMES_PER_S
    return None


def transcribe_clips(asr: WhisperAsr, clips: Sequence[Clip]) -> list[Transcript]:
    """Transcribe ``clips`` together; the result is parallel to ``clips``.

    With ``asr.short_windows`` off, the same output as transcribing each clip alone with
    ``WhisperModel.transcribe(language=<detected>, beam_size, initial_prompt,
    vad_filter=True, condition_on_previous_text=False)``; with it on, short clips are read
    from short windows (see the module docstring).
    """
    return [heard.transcript or Transcript(text="", language=heard.language)
            for heard in hear_clips(asr, clips)]


@dataclass(frozen=True)
class Heard:
    """Whisper's language ID of one clip, and its transcript unless another recogniser
    takes the clip (``transcript is None``)."""

    language: str  # "" when Silero VAD found no speech
    transcript: Transcript | None


def hear_clips(asr: WhisperAsr, clips: Sequence[Clip],
               keep: Callable[[str], bool] | None = None) -> list[Heard]:
    """Identify each clip's language, then transcribe the clips whose language ``keep``
    accepts (all when ``keep`` is None); the result is parallel to ``clips``.

    Language ID reads the encoder output of the first window, which the transcription
    of a kept clip goes on to decode, so routing a clip costs no second encoder pass; a clip
    ``keep`` refuses stops after that one window. A clip without speech is ``Heard("",
    Transcript("", ""))``.
    """
    model = asr.model
    heard: list[Heard] = [Heard("", Transcript(text="", language="", model=asr.info.model))
                          for _ in clips]
    states: list[_ClipState] = []
    for i, clip in enumerate(clips):
        audio = speech_only(np.ascontiguousarray(clip, dtype=np.float32))
        if audio is None:
            continue  # nothing to detect a language in: an empty transcript
        features = model.feature_extractor(audio)
        content = features.shape[-1] - 1
        short = asr.short_windows and short_window_frames(content) is not None
        states.append(_ClipState(index=i, features=features, content_frames=content,
                                 short=short))
    if not states:
        return heard

    options = _options(asr, ZH_PROMPT)
    first_round = True
    while True:
        active = [s for s in states if not s.done]
        if not active:
            break
        windows = [_window(s) for s in active]
        encoded = _encode(asr, [w for w, _size in windows])
        if first_round:
            _pick_languages(asr, active, encoded, ZH_PROMPT)
            first_round = False
            if keep is not None:
                handed = [k for k, s in enumerate(active) if not keep(s.language)]
                for k in handed:
                    heard[active[k].index] = Heard(active[k].language, None)
                # By identity: the states hold arrays, which dataclass equality cannot compare.
                gone = {id(active[k]) for k in handed}
                states = [s for s in states if id(s) not in gone]
                kept = [k for k in range(len(active)) if k not in handed]
                active = [active[k] for k in kept]
                windows = [windows[k] for k in kept]
                encoded = [encoded[k] for k in kept]
                if not active:
                    break
        _decode_round(asr, active, windows, encoded, options)

    for s in states:
        text = join_text(s.texts, s.language)
        if s.language == "zh":
            text = to_simplified(text)
        heard[s.index] = Heard(s.language, Transcript(text=text, language=s.language,
                                                      model=asr.info.model))
    return heard


def _window(state: _ClipState) -> tuple[np.ndarray, int]:
    """The clip's next window of mel frames, and how many of them are its speech."""
    from faster_whisper.audio import pad_or_trim

    if state.short:
        rest = state.content_frames - state.seek
        frames = short_window_frames(rest)
        assert frames is not None  # the rest of a short clip is shorter still
        window = np.zeros((state.features.shape[0], frames), dtype=state.features.dtype)
        window[:, :rest] = state.features[:, state.seek: state.content_frames]
        return window, rest
    size = min(WINDOW_FRAMES, state.content_frames - state.seek)
    segment = state.features[:, state.seek: state.seek + size]
    return pad_or_trim(segment), size


def _encode(asr: WhisperAsr, windows: list[np.ndarray]) -> list[np.ndarray]:
    """Encoder output of each window, (1, frames / 2, d_model) each, on the host."""
    ct2 = asr.model.model
    if ct2.device == "cuda":
        out: list[np.ndarray] = [np.empty(0)] * len(windows)
        for members in _by_length(windows, axis=-1).values():
            feats = np.ascontiguousarray(np.stack([windows[k] for k in members]))
            batch = np.asarray(ct2.encode(_storage(feats), to_cpu=True))
            for row, k in enumerate(members):
                out[k] = batch[row: row + 1]
        return out
    # One window at a time: on CPU a batched encoder was no faster (see module docstring).
    return [np.asarray(ct2.encode(_storage(np.ascontiguousarray(w[None])), to_cpu=True))
            for w in windows]


def _by_length(arrays: Sequence[np.ndarray], axis: int) -> dict[int, list[int]]:
    """Indices of ``arrays`` grouped by their length along ``axis``."""
    groups: dict[int, list[int]] = defaultdict(list)
    for k, array in enumerate(arrays):
        groups[array.shape[axis]].append(k)
    return groups


def _storage(array: np.ndarray) -> Any:
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array))


def _pick_languages(asr: WhisperAsr, states: list[_ClipState], encoded: list[np.ndarray],
                    zh_prompt: str) -> None:
    from faster_whisper.tokenizer import Tokenizer

    model = asr.model
    for members in _by_length(encoded, axis=1).values():
        detected = model.model.detect_language(
            _storage(np.concatenate([encoded[k] for k in members])))
        for k, probs in zip(members, detected, strict=True):
            state = states[k]
            all_probs = [(token[2:-2], p) for token, p in probs]
            if asr.languages:
                allowed = [(p, code) for code, p in all_probs if code in asr.languages]
                language = max(allowed)[1] if allowed else asr.languages[0]
            else:
                language = all_probs[0][0]
            state.language = language
            state.tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual,
                                        task="transcribe", language=language)
            if language == "zh":
                # generate_segments prefixes the initial prompt with a space.
                state.initial_prompt = state.tokenizer.encode(" " + zh_prompt.strip())
                state.prompt_tokens = list(state.initial_prompt)


def _options(asr: WhisperAsr, zh_prompt: str) -> Any:
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

    model = asr.model
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                          language="en")
    return TranscriptionOptions(
        beam_size=asr.beam_size, best_of=BEST_OF, patience=1, length_penalty=1,
        repetition_penalty=1, no_repeat_ngram_size=0, log_prob_threshold=LOG_PROB_THRESHOLD,
        no_speech_threshold=NO_SPEECH_THRESHOLD,
        compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
        condition_on_previous_text=False, prompt_reset_on_temperature=0.5,
        temperatures=list(TEMPERATURES), initial_prompt=None, prefix=None,
        suppress_blank=True,
        # The suppressed set does not depend on the language.
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        without_timestamps=False, max_initial_timestamp=MAX_INITIAL_TIMESTAMP,
        word_timestamps=False, prepend_punctuations="\"'“¿([{-",
        append_punctuations="\"'.。,，!！?？:：”)]}、", multilingual=False,
        max_new_tokens=None, clip_timestamps="0", hallucination_silence_threshold=None,
        hotwords=None,
    )


def _max_new_tokens(window: np.ndarray) -> int:
    """Token cap of a short window (30 s windows keep Whisper's own 448-token limit)."""
    return TOKEN_SLACK + round(TOKENS_PER_S * window.shape[-1] / FRAMES_PER_S)


def _decode_round(asr: WhisperAsr, states: list[_ClipState],
                  windows: list[tuple[np.ndarray, int]], encoded: list[np.ndarray],
                  options: Any) -> None:
    from faster_whisper.transcribe import get_compression_ratio

    model = asr.model
    prompts = [model.get_prompt(s.tokenizer, list(s.prompt_tokens)) for s in states]
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k, prompt in enumerate(prompts):
        groups[(len(prompt), windows[k][0].shape[-1])].append(k)
    decoded: dict[int, Any] = {}
    for (prompt_len, _frames), members in groups.items():
        short = states[members[0]].short  # a window length is short or 30 s for all
        cap = _max_new_tokens(windows[members[0]][0]) if short else None
        batch = model.model.generate(
            _storage(np.concatenate([encoded[k] for k in members])),
            [prompts[k] for k in members],
            beam_size=options.beam_size,
            patience=options.patience,
            length_penalty=options.length_penalty,
            repetition_penalty=options.repetition_penalty,
            no_repeat_ngram_size=options.no_repeat_ngram_size,
            max_length=model.max_length if cap is None else min(model.max_length,
                                                                 prompt_len + cap),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=options.suppress_blank,
            suppress_tokens=options.suppress_tokens,
            max_initial_timestamp_index=int(round(MAX_INITIAL_TIMESTAMP
                                                  / model.time_precision)),
        )
        decoded.update(zip(members, batch, strict=True))

    for k, state in enumerate(states):
        result = decoded[k]
        tokenizer = state.tokenizer
        tokens = result.sequences_ids[0]
        avg_logprob = _avg_logprob(result)
        text = tokenizer.decode(tokens).strip()  # the text tokens alone
        ratio = get_compression_ratio(text)
        window, size = windows[k]
        if state.short and _doubtful(result, avg_logprob, ratio, text, size,
                                     _max_new_tokens(window)):
            state.use_full_windows()  # decoded again from the start, next round
            continue
        if _needs_fallback(result.no_speech_prob, avg_logprob, ratio):
            # Rare: redo this window alone at rising temperatures, as the single-clip path.
            result, avg_logprob, _temp, _ratio = model.generate_with_fallback(
                _storage(encoded[k]), prompts[k], tokenizer, options
            )
            tokens = result.sequences_ids[0]
        if result.no_speech_prob > NO_SPEECH_THRESHOLD and not avg_logprob > LOG_PROB_THRESHOLD:
            state.seek += size  # a window of non-speech: skip it
            continue
        segments, state.seek, _single_ending = model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=tokens,
            time_offset=state.seek * model.feature_extractor.time_per_frame,
            segment_size=size,
            segment_duration=size * model.feature_extractor.time_per_frame,
            seek=state.seek,
        )
        for segment in segments:
            text = tokenizer.decode(segment["tokens"])
            if segment["start"] == segment["end"] or not text.strip():
                continue
            state.texts.append(text)
        state.prompt_tokens = []


def _doubtful(result: Any, avg_logprob: float, ratio: float, text: str,
              speech_frames: int, cap: int) -> bool:
    """Whether a short window's decode (``text``: its words) is one the 30 s window should
    redo: it would need the temperature fallback, met its token cap, writes more tokens
    than its speech can hold, or says one thing twice or more."""
    if _needs_fallback(result.no_speech_prob, avg_logprob, ratio):
        return True
    tokens = result.sequences_ids[0]
    if len(tokens) >= cap:
        return True
    speech_s = max(speech_frames / FRAMES_PER_S, 1.0)
    if len(tokens) / speech_s > MAX_TOKENS_PER_SPEECH_S:
        return True
    return repeats_itself(text)


def repeats_itself(text: str) -> bool:
    """Whether ``text``, without spaces and punctuation, is one piece of at least
    :data:`MIN_REPEATED_LETTERS` said 2-4 times over ("打开金玉良缘。打开金玉良缘。"):
    Whisper's way of filling a short window's silence."""
    letters = "".join(ch for ch in text
                      if not ch.isspace() and not unicodedata.category(ch).startswith("P"))
    n = len(letters)
    return any(n % times == 0 and n // times >= MIN_REPEATED_LETTERS
               and letters == letters[: n // times] * times for times in (2, 3, 4))


def _avg_logprob(result: Any) -> float:
    seq_len = len(result.sequences_ids[0])
    return result.scores[0] * seq_len / (seq_len + 1)


def _needs_fallback(no_speech_prob: float, avg_logprob: float, ratio: float) -> bool:
    needs = ratio > COMPRESSION_RATIO_THRESHOLD or avg_logprob < LOG_PROB_THRESHOLD
    if no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOG_PROB_THRESHOLD:
        needs = False  # silence, not a bad decode
    return needs


def warm_up(asr: WhisperAsr) -> None:
    """Run the encoder and a few decoder steps once, so the first clip does not pay for it."""
    from faster_whisper.tokenizer import Tokenizer

    model = asr.model
    # The window most notes get: the first encode of a length pays a one-off setup.
    frames = SHORT_WINDOWS_S[0] * FRAMES_PER_S if asr.short_windows else WINDOW_FRAMES
    window = np.zeros((1, model.model.n_mels, frames), dtype=np.float32)
    encoded = np.asarray(model.model.encode(_storage(window), to_cpu=True))
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                          language="en")
    prompt = model.get_prompt(tokenizer, [])
    model.model.generate(_storage(encoded), [prompt], beam_size=asr.beam_size,
                         max_length=len(prompt) + 4)
