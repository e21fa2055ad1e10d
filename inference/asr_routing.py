"""Language routing: every note goes to a recogniser that speaks its language.

The full tier's recogniser may speak only some languages: Paraformer-zh is a Mandarin model
(an English note comes back as Chinese characters, or as English words spelled by a Chinese
vocabulary), SenseVoice-Small speaks zh/en/yue/ja/ko and says which one it heard. So a
note's language is settled before its transcript is trusted, in one of three ways, chosen
once from the model and ``VOICEMOOD_LANGUAGES`` by :func:`choose_route`:

==========================  =================================================  =============
route                       when                                               language ID
==========================  =================================================  =============
``fixed``                   one language configured, and the recogniser        the setting
                            speaks it (``VOICEMOOD_LANGUAGES=zh`` with
                            Paraformer-zh): no Whisper at all
``own``                     the recogniser identifies languages itself         the
                            (SenseVoice) and speaks every configured one       recogniser's
                                                                               tag
``whisper``                 anything else: Paraformer-zh with ``zh,en``, or    Whisper, on
                            no language list (any language)                    the same audio
==========================  =================================================  =============

With the ``whisper`` route, Whisper's language ID (limited to ``VOICEMOOD_LANGUAGES``) runs
first; notes in a language the full-tier recogniser speaks go to it, in one batch, and the
others are transcribed by the offline Whisper, also in one batch, continuing from the
encoder pass the language ID made. With ``own``, a note the recogniser tags with a language
outside ``VOICEMOOD_LANGUAGES`` is transcribed again by Whisper (limited to the list), so no
note is ever written in a language nobody asked for. Whisper can write every language it
identifies, so no configured language is left without a recogniser, and none is turned into
another language's script.

Each :class:`~inference.types.Transcript` names the recogniser that wrote it
(``Transcript.model``), which the pipeline reports per note as the JSON's ``models.asr``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from inference.types import AsrBackend, Clip, ModelInfo, Transcript

log = logging.getLogger(__name__)

#: Languages SenseVoice-Small writes (its ``<|zh|>``... tags), in its own order.
SENSEVOICE_LANGUAGES: tuple[str, ...] = ("zh", "en", "yue", "ja", "ko")
#: Route names, see the module docstring.
ROUTES: tuple[str, ...] = ("fixed", "own", "whisper")


@dataclass(frozen=True)
class Speaks:
    """What a full-tier recogniser can write, and whether it tells the language itself."""

    languages: frozenset[str]
    identifies: bool

    def describe(self) -> str:
        """``"zh"`` or ``"zh/en/yue/ja/ko, own language ID"`` for status lines."""
        order = [lang for lang in SENSEVOICE_LANGUAGES if lang in self.languages]
        order += sorted(self.languages - set(order))
        return "/".join(order) + (", own language ID" if self.identifies else "")


def speaks_of(model_class: str, model_id: str) -> Speaks:
    """Languages of a funasr recogniser, from its class (``config.yaml``'s ``model``) and id.

    SenseVoice identifies zh/en/yue/ja/ko. Paraformer models are monolingual and say which
    language only in their name: ``paraformer-en`` and the ``..._asr_nat-en-...`` ids are
    English, every other Paraformer (``paraformer-zh``, SeACo, a local folder) Mandarin.
    """
    # The class, when a local config.yaml names it, wins over the name.
    if "sensevoice" in (model_class or model_id).lower():
        return Speaks(frozenset(SENSEVOICE_LANGUAGES), identifies=True)
    name = model_id.lower().replace("_", "-")
    english = "paraformer-en" in name or "nat-en-" in name
    return Speaks(frozenset({"en" if english else "zh"}), identifies=False)


def choose_route(speaks: Speaks, languages: Sequence[str]) -> str:
    """The route for a recogniser and the configured languages (empty: any language)."""
    wanted = [lang for lang in languages if lang]
    if wanted and set(wanted) <= speaks.languages:
        if speaks.identifies:
            return "own"
        if len(wanted) == 1:
            return "fixed"
    return "whisper"


def describe_routes(speaks: Speaks, languages: Sequence[str], primary: str,
                    whisper: str) -> str:
    """One line for `models status`: which language goes where, and who identifies it."""
    wanted = [lang for lang in languages if lang]
    route = choose_route(speaks, wanted)
    ours = [lang for lang in wanted if lang in speaks.languages] if wanted else sorted(
        speaks.languages)
    others = [lang for lang in wanted if lang not in speaks.languages]
    to_primary = "/".join(ours) + f" -> {primary}"
    if route == "fixed":
        return f"routes: {to_primary}; language fixed by VOICEMOOD_LANGUAGES"
    rest = "/".join(others) if wanted else "any other language"
    parts = [to_primary]
    if others or not wanted:
        parts.append(f"{rest} -> {whisper}")
    if route == "own":
        parts.append("language ID: the recogniser's own tag, and a tag outside "
                     f"VOICEMOOD_LANGUAGES -> {whisper}")
    else:
        parts.append(f"language ID: {whisper}")
    return "routes: " + "; ".join(parts)


class RoutedAsr:
    """:class:`~inference.types.AsrBackend` that sends each clip to a recogniser that speaks
    its language (see the module docstring)."""

    def __init__(self, primary: AsrBackend, speaks: Speaks, languages: Sequence[str],
                 whisper: AsrBackend | None) -> None:
        self.primary = primary
        self.speaks = speaks
        self.languages = [lang for lang in languages if lang]
        self.route = choose_route(speaks, self.languages)
        if self.route != "fixed" and whisper is None:
            raise ValueError(f"the {self.route!r} route needs the offline Whisper")
        self.whisper = whisper
        whisper_name = whisper.info.model if whisper is not None else "-"
        info = primary.info
        self.info = ModelInfo(
            component="asr", tier=info.tier, model=info.model, device=info.device,
            detail=f"{info.detail}; " + describe_routes(speaks, self.languages, info.model,
                                                        whisper_name),
            extra={**info.extra, "route": self.route},
        )

    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        """One transcript per clip, each from a recogniser that speaks the clip's language."""
        if not clips:
            return []
        if self.route == "fixed":
            language = self.languages[0]
            return [_relabel(t, language if t.text.strip() else "", self.primary.info.model)
                    for t in self.primary.transcribe_batch(clips)]
        if self.route == "own":
            return self._own(clips)
        return self._whisper_first(clips)

    def _own(self, clips: Sequence[Clip]) -> list[Transcript]:
        out = [_relabel(t, t.language, self.primary.info.model)
               for t in self.primary.transcribe_batch(clips)]
        redo = [i for i, t in enumerate(out)
                if t.text.strip() and t.language not in self.languages]
        if redo:
            assert self.whisper is not None
            log.info("%d note(s) tagged outside VOICEMOOD_LANGUAGES (%s); Whisper transcribes "
                     "them", len(redo), ", ".join(sorted({out[i].language for i in redo})))
            again = self.whisper.transcribe_batch([clips[i] for i in redo])
            for i, t in zip(redo, again, strict=True):
                # The recogniser's voice reading stays: it heard the same audio.
                out[i] = Transcript(t.text, t.language, model=self.whisper.info.model,
                                    voice=out[i].voice)
        return out

    def _whisper_first(self, clips: Sequence[Clip]) -> list[Transcript]:
        from inference.whisper_batch import hear_clips

        assert self.whisper is not None
        heard = hear_clips(self.whisper, clips,  # type: ignore[arg-type]
                           keep=lambda lang: lang not in self.speaks.languages)
        out: list[Transcript] = [h.transcript or Transcript("", "") for h in heard]
        ours = [i for i, h in enumerate(heard) if h.transcript is None]
        if ours:
            # One batch for the primary recogniser: batching still works within a route.
            for i, t in zip(ours, self.primary.transcribe_batch([clips[i] for i in ours]),
                            strict=True):
                out[i] = _relabel(t, heard[i].language if t.text.strip() else "",
                                  self.primary.info.model)
        return out


def _relabel(t: Transcript, language: str, model: str) -> Transcript:
    return Transcript(t.text, language, model=model, voice=t.voice)
