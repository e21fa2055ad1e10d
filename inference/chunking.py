"""Split long recordings at pauses, and put the pieces' readings back together.

A recording of several minutes would hold the model thread for as long as it takes to
transcribe it, and every short note queued behind it would wait. The engine therefore cuts
a clip longer than :data:`SPLIT_ABOVE_S` into VAD-bounded chunks of at most :data:`CHUNK_S`
seconds of speech, queues them as separate work units interleaved with other jobs, and
joins the results: transcripts in order, the voice readings averaged by duration, the text
emotion read once on the joined transcript.

Chunks are cut in the pauses Silero VAD finds (the VAD faster-whisper ships, which runs
offline), keeping up to :data:`PAD_S` of the pause on each side so no word is clipped.
:data:`CHUNK_S` stays below Whisper's 30 s window so that each chunk needs one encoder pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inference.transcript_text import join_text
from inference.types import SAMPLE_RATE, Transcript, VoiceReading

#: Clips up to this long are one work unit; longer ones are cut into chunks.
SPLIT_ABOVE_S = 30.0
#: Most speech in one chunk of a long clip.
CHUNK_S = 25.0
#: Silence kept on each side of a chunk's speech (bounded by the middle of the pause).
PAD_S = 1.0
#: Labels of the prosody backend, whose label follows from the arousal alone.
_PROSODY_LABELS = {"calm", "moderate", "agitated"}


def split_spans(samples: np.ndarray, *, long_s: float = SPLIT_ABOVE_S,
                chunk_s: float = CHUNK_S, pad_s: float = PAD_S) -> list[tuple[int, int]]:
    """Sample ranges ``[start, end)`` to process separately; one range for a short clip.

    Slow for long clips (Silero VAD, ~0.5 s per minute of audio on one core): call it off
    the event loop.
    """
    n = len(samples)
    if n <= long_s * SAMPLE_RATE:
        return [(0, n)]
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    # max_speech_duration_s makes the VAD itself cut a monologue without long pauses at
    # its last short silence, so no single speech segment exceeds a chunk.
    speech = get_speech_timestamps(
        np.ascontiguousarray(samples, dtype=np.float32),
        VadOptions(max_speech_duration_s=chunk_s),
    )
    if not speech:
        # No speech anywhere: one window is enough for the ASR to say so.
        return [(0, min(n, int(chunk_s * SAMPLE_RATE)))]
    limit = int(chunk_s * SAMPLE_RATE)
    groups: list[list[int]] = []  # [first speech start, last speech end]
    for seg in speech:
        start, end = int(seg["start"]), int(seg["end"])
        if groups and end - groups[-1][0] <= limit:
            groups[-1][1] = end
        else:
            groups.append([start, end])
    pad = int(pad_s * SAMPLE_RATE)
    spans: list[tuple[int, int]] = []
    for i, (start, end) in enumerate(groups):
        lo = 0 if i == 0 else max(start - pad, (groups[i - 1][1] + start) // 2)
        hi = n if i == len(groups) - 1 else min(end + pad, (end + groups[i + 1][0]) // 2)
        spans.append((lo, hi))
    return spans


def join_transcripts(parts: Sequence[Transcript], weights: Sequence[float]) -> Transcript:
    """One transcript from the chunks' transcripts, in order.

    The language is the one heard in most of the audio (by chunk duration); Chinese and
    Japanese text is joined without spaces, as Whisper's segments are.
    """
    if len(parts) == 1:
        return parts[0]
    votes: dict[str, float] = {}
    for part, w in zip(parts, weights, strict=True):
        if part.text.strip() and part.language:
            votes[part.language] = votes.get(part.language, 0.0) + w
    language = max(votes, key=lambda k: votes[k]) if votes else ""
    # The recogniser of the chunks in that language answered the note (routing sends every
    # chunk of one language to the same one).
    model = next((p.model for p in parts if p.language == language and p.model),
                 next((p.model for p in parts if p.model), ""))
    return Transcript(text=join_text([p.text for p in parts], language), language=language,
                      model=model)


def merge_voice(readings: Sequence[VoiceReading | None],
                weights: Sequence[float]) -> VoiceReading | None:
    """Duration-weighted mean of the chunks' voice readings (None when there are none).

    Arousal, valence and every score are averaged. The label is the top averaged score,
    except for the prosody backend, whose label is a band of the arousal.
    """
    pairs = [(r, w) for r, w in zip(readings, weights, strict=True) if r is not None]
    if not pairs:
        return None
    if len(pairs) == 1:
        return pairs[0][0]
    total = sum(w for _, w in pairs) or 1.0
    arousal = sum(r.arousal * w for r, w in pairs) / total
    valences = [(r.valence, w) for r, w in pairs]
    valence = (
        sum(v * w for v, w in valences if v is not None) / total
        if all(v is not None for v, _ in valences) else None
    )
    keys: list[str] = []
    for r, _ in pairs:
        keys.extend(k for k in r.scores if k not in keys)
    scores = {k: sum(r.scores.get(k, 0.0) * w for r, w in pairs) / total for k in keys}
    if keys and set(keys) <= _PROSODY_LABELS:
        from inference.voice_prosody import label_for

        label = label_for(arousal)
    elif scores:
        label = max(scores, key=lambda k: scores[k])
    else:
        label = pairs[0][0].label
    return VoiceReading(label=label, arousal=float(arousal), scores=scores,
                        model=pairs[0][0].model, valence=valence)
