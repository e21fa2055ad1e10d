"""Whisper over many clips at once, with the same decoding rules as one clip at a time.

faster-whisper's ``WhisperModel.transcribe`` handles one clip; its ``BatchedInferencePipeline``
batches the VAD chunks of *one* clip but drops the temperature fallback and the re-decoding
of a window whose last sentence was cut off (measured on shared/data: "...by means of
movable" instead of "...movable types."). This module runs the sequential algorithm of
``WhisperModel.generate_segments`` for a list of clips in lock-step, one 30 s window per clip
per round:

1. Silero VAD keeps the speech of each clip (``vad_filter=True``, default ``VadOptions``).
2. Each round encodes one window per active clip. On CPU the encoder runs window by window
   (batching it was no faster on 2 cores and holds more memory); on CUDA in one batch.
   Round 1 also picks each clip's language from its own encoder output (restricted to the
   allowed languages), so the encoder runs once per window instead of twice.
3. The windows are decoded together with beam search in one ``generate`` call per prompt
   length (CTranslate2 needs ``<|startoftranscript|>`` at the same position in a batch; the
   Mandarin prompt makes those prompts longer).
4. Per window, exactly as ``generate_segments`` with ``condition_on_previous_text=False``:
   temperature fallback (compression ratio > 2.4 or avg log-prob < -1: re-decoded alone
   through ``generate_with_fallback``), the no-speech skip, the split on timestamp tokens,
   and the next window starting at the last complete segment.

Beam search in CTranslate2 keeps the hypotheses of each batch item apart, so a batch gives
the same tokens as the clips one by one (checked in tests/test_engine.py on real
recordings).
"""

from __future__ import annotations

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

#: WhisperModel.transcribe's defaults, which the single-clip path used.
BEST_OF = 5
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
MAX_INITIAL_TIMESTAMP = 1.0
#: Frames in one Whisper window (30 s at 100 frames/s).
WINDOW_FRAMES = 3000


@dataclass
class _ClipState:
    """Decoding state of one clip."""

    index: int
    features: np.ndarray  # (n_mels, frames) of the speech VAD kept
    content_frames: int
    seek: int = 0
    language: str = ""
    tokenizer: Any = None
    #: Tokens of the initial prompt; emptied once a window has been decoded, as
    #: generate_segments does when it does not condition on previous text.
    prompt_tokens: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.seek >= self.content_frames


def speech_only(clip: np.ndarray) -> np.ndarray | None:
    """The clip with non-speech removed by Silero VAD, or None when no speech was found."""
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    speech = get_speech_timestamps(clip, VadOptions())
    if not speech:
        return None
    chunks, _ = collect_chunks(clip, speech)
    audio = np.concatenate(chunks, axis=0)
    return audio if audio.size else None


def transcribe_clips(asr: WhisperAsr, clips: Sequence[Clip]) -> list[Transcript]:
    """Transcribe ``clips`` together; the result is parallel to ``clips``.

    Same output as transcribing each clip alone with ``WhisperModel.transcribe(language=
    <detected>, beam_size, initial_prompt, vad_filter=True, condition_on_previous_text=False)``.
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

    Language ID reads the encoder output of the first 30 s window, which the transcription
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
        states.append(_ClipState(index=i, features=features,
                                 content_frames=features.shape[-1] - 1))
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
                encoded = encoded[kept]
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
    from faster_whisper.audio import pad_or_trim

    size = min(WINDOW_FRAMES, state.content_frames - state.seek)
    segment = state.features[:, state.seek: state.seek + size]
    return pad_or_trim(segment), size


def _encode(asr: WhisperAsr, windows: list[np.ndarray]) -> np.ndarray:
    """Encoder output of each window, as one host array (batch, 1500, d_model)."""
    ct2 = asr.model.model
    if ct2.device == "cuda":
        feats = np.ascontiguousarray(np.stack(windows))
        out = asr.model.model.encode(_storage(feats), to_cpu=True)
        return np.asarray(out)
    # One window at a time: on CPU a batched encoder was no faster (see module docstring).
    return np.concatenate(
        [np.asarray(ct2.encode(_storage(np.ascontiguousarray(w[None])), to_cpu=True))
         for w in windows],
        axis=0,
    )


def _storage(array: np.ndarray) -> Any:
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array))


def _pick_languages(asr: WhisperAsr, states: list[_ClipState], encoded: np.ndarray,
                    zh_prompt: str) -> None:
    from faster_whisper.tokenizer import Tokenizer

    model = asr.model
    detected = model.model.detect_language(_storage(encoded))
    for state, probs in zip(states, detected, strict=True):
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
            state.prompt_tokens = state.tokenizer.encode(" " + zh_prompt.strip())


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


def _decode_round(asr: WhisperAsr, states: list[_ClipState],
                  windows: list[tuple[np.ndarray, int]], encoded: np.ndarray,
                  options: Any) -> None:
    from faster_whisper.transcribe import get_compression_ratio

    model = asr.model
    prompts = [model.get_prompt(s.tokenizer, list(s.prompt_tokens)) for s in states]
    groups: dict[int, list[int]] = defaultdict(list)
    for k, prompt in enumerate(prompts):
        groups[len(prompt)].append(k)
    decoded: dict[int, Any] = {}
    for members in groups.values():
        batch = model.model.generate(
            _storage(encoded[members]),
            [prompts[k] for k in members],
            beam_size=options.beam_size,
            patience=options.patience,
            length_penalty=options.length_penalty,
            repetition_penalty=options.repetition_penalty,
            no_repeat_ngram_size=options.no_repeat_ngram_size,
            max_length=model.max_length,
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
        ratio = get_compression_ratio(tokenizer.decode(tokens).strip())
        if _needs_fallback(result.no_speech_prob, avg_logprob, ratio):
            # Rare: redo this window alone at rising temperatures, as the single-clip path.
            result, avg_logprob, _temp, _ratio = model.generate_with_fallback(
                _storage(encoded[k: k + 1]), prompts[k], tokenizer, options
            )
            tokens = result.sequences_ids[0]
        _, size = windows[k]
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
    window = np.zeros((1, model.model.n_mels, WINDOW_FRAMES), dtype=np.float32)
    encoded = np.asarray(model.model.encode(_storage(window), to_cpu=True))
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                          language="en")
    prompt = model.get_prompt(tokenizer, [])
    model.model.generate(_storage(encoded), [prompt], beam_size=asr.beam_size,
                         max_length=len(prompt) + 4)
