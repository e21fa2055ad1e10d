"""Choose and load one backend per component: the full tier when its weights are local,
else the offline tier (or what the config forces).

``auto`` never reaches for a model hub: it takes the full tier only when the model is in a
configured directory, in ``models/`` or in a hub cache already. An explicit choice
(``VOICEMOOD_ASR_BACKEND=funasr``...) loads that tier or fails with a clear message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from inference.config import InferenceConfig
from inference.errors import ModelUnavailable
from inference.types import AsrBackend, ModelInfo, TextEmotionBackend, VoiceEmotionBackend

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Backends:
    """The loaded models of one process."""

    asr: AsrBackend
    text: TextEmotionBackend | None
    voice: VoiceEmotionBackend | None
    device: str

    def infos(self) -> list[ModelInfo]:
        """What runs, component by component."""
        out = [self.asr.info]
        out.append(self.text.info if self.text else ModelInfo("text_emotion", "off", ""))
        out.append(self.voice.info if self.voice else ModelInfo("voice_emotion", "off", ""))
        return out

    def models(self) -> dict[str, str]:
        """Component -> model id, as recorded with every analysis."""
        return {i.component: i.model for i in self.infos() if i.tier != "off"}


def _local(model_id: str, models_dir: Path) -> Path | None:
    from inference.model_paths import local_model_dir

    return local_model_dir(model_id, models_dir)


def _whisper_dir(config: InferenceConfig) -> Path:
    """The folder the offline ASR loads from (see :func:`load_whisper`), without
    assembling it."""
    from inference.whisper_weights import MODEL_NAME

    if config.whisper_model:
        return Path(config.whisper_model)
    return Path(config.models_dir) / MODEL_NAME


def plan(config: InferenceConfig) -> list[ModelInfo]:
    """Which tier each component would run, decided without loading anything.

    Model names come from the same functions the loaded backends use
    (:func:`~inference.asr_whisper.whisper_model_name`,
    :func:`~inference.text_emotion_lexicon.lexicon_model_name`), so ``models status``
    names each model as the start-up log, the metrics and the stored analyses do.
    """
    from inference import text_en_model as en_ngram
    from inference import text_ngram_model as zh_ngram
    from inference.asr_whisper import whisper_model_name
    from inference.text_emotion_lexicon import lexicon_model_name

    mdir = Path(config.models_dir)
    infos: list[ModelInfo] = []

    asr_local = _local(config.asr_model, mdir) if config.asr_model else None
    sensevoice = False
    if config.asr_backend == "funasr" or (config.asr_backend == "auto" and asr_local):
        from inference.asr_funasr import is_sensevoice, model_class
        from inference.asr_routing import describe_routes, speaks_of

        source = str(asr_local or config.asr_model)
        sensevoice = is_sensevoice(source)
        detail = "sensevoice" if sensevoice else "paraformer"
        stages = (("vad", config.vad_model),) if sensevoice else (
            ("vad", config.vad_model), ("punc", config.punc_model))
        for name, value in stages:
            detail += f" + {name}: " + (
                "off" if not value else (str(_local(value, mdir) or value))
            )
        speaks = speaks_of(model_class(source), f"{config.asr_model} {source}")
        detail += ("" if asr_local else " (not downloaded)") + "; " + describe_routes(
            speaks, config.language_list, source, whisper_model_name(_whisper_dir(config)))
        infos.append(ModelInfo("asr", "full", source, detail=detail))
    else:
        why = "forced" if config.asr_backend == "whisper" else (
            f"{config.asr_model or 'no funasr model'} not found locally")
        infos.append(ModelInfo("asr", "offline", whisper_model_name(_whisper_dir(config)),
                               detail=f"faster-whisper ({why})"))

    infos.append(_plan_text(config, mdir, lexicon_model_name(
        zh_ngram.MODEL_PATH.exists(), en_ngram.MODEL_PATH.exists())))
    voice = _plan_optional(
        "voice_emotion", config.voice_emotion_backend, "emotion2vec",
        config.voice_emotion_model, mdir, "prosody-arousal (numpy)",
    )
    if sensevoice and voice.tier == "offline" and config.voice_emotion_backend == "auto":
        voice = ModelInfo("voice_emotion", "full", infos[0].model,
                          detail=f"SenseVoice's emotion tag ({voice.detail})")
    infos.append(voice)
    return infos


def _plan_text(config: InferenceConfig, mdir: Path, words_model: str) -> ModelInfo:
    """The text-emotion line: one classifier, or one per language plus the words model."""
    from inference.text_emotion_by_language import ANY, parse_text_models

    try:
        models = parse_text_models(config.text_emotion_model)
    except ValueError as exc:
        return ModelInfo("text_emotion", "offline", words_model, detail=str(exc))
    if config.text_emotion_backend in ("off", "lexicon") or set(models) <= {ANY}:
        return _plan_optional("text_emotion", config.text_emotion_backend, "transformers",
                              models.get(ANY, ""), mdir, words_model)
    full: list[str] = []
    words: list[str] = []
    for lang, model_id in models.items():
        local = _local(model_id, mdir)
        if local or config.text_emotion_backend == "transformers":
            full.append(f"{lang}={local or model_id}" + ("" if local else " (not downloaded)"))
        else:
            words.append(f"{lang} ({model_id} not found locally)")
    detail = "per language; words model for " + "".join(w + ", " for w in words) + (
        "any other language")
    if not full:
        return ModelInfo("text_emotion", "offline", words_model, detail=detail)
    return ModelInfo("text_emotion", "full", ",".join(full), detail=detail)


def _plan_optional(component: str, backend: str, full_name: str, model_id: str, mdir: Path,
                   offline_name: str) -> ModelInfo:
    if backend == "off":
        return ModelInfo(component, "off", "", detail="disabled by setting")
    local = _local(model_id, mdir) if model_id else None
    if backend == full_name or (backend == "auto" and local):
        return ModelInfo(component, "full", str(local or model_id),
                         detail="" if local else "not downloaded")
    why = "forced" if backend != "auto" else (
        f"{model_id} not found locally" if model_id else "no model configured")
    return ModelInfo(component, "offline", offline_name, detail=why)


def load_backends(config: InferenceConfig, device: str) -> Backends:
    """Load every configured model once. Slow (seconds): call it off the event loop."""
    asr = load_asr(config, device)
    return Backends(
        asr=asr,
        text=load_text(config, device),
        voice=load_voice(config, device, asr=asr),
        device=device,
    )


def load_asr(config: InferenceConfig, device: str) -> AsrBackend:
    """The ASR backend the config asks for; a full-tier one behind language routing."""

    def full() -> AsrBackend:
        from inference.asr_funasr import is_sensevoice, load_funasr_asr
        from inference.asr_sensevoice import load_sensevoice_asr

        source = str(_local(config.asr_model, Path(config.models_dir)) or config.asr_model)
        load = load_sensevoice_asr if is_sensevoice(source) else load_funasr_asr
        return with_routing(load(config, device), config, device)

    backend = _load_tier(config, config.asr_backend, "funasr", config.asr_model, full,
                         lambda: load_whisper(config, device))
    assert backend is not None  # ASR has no "off" choice
    return backend


def with_routing(primary: AsrBackend, config: InferenceConfig, device: str) -> AsrBackend:
    """``primary`` behind :class:`~inference.asr_routing.RoutedAsr`, with the offline Whisper
    loaded when the route needs it (see inference/asr_routing.py)."""
    from inference.asr_funasr import model_class
    from inference.asr_routing import RoutedAsr, choose_route, speaks_of

    source = primary.info.model
    speaks = speaks_of(model_class(source), f"{config.asr_model} {source}")
    route = choose_route(speaks, config.language_list)
    whisper = None if route == "fixed" else load_whisper(config, device)
    return RoutedAsr(primary, speaks, config.language_list, whisper)


def load_whisper(config: InferenceConfig, device: str) -> AsrBackend:
    """Offline Whisper base (or the CTranslate2 folder in VOICEMOOD_WHISPER_MODEL)."""
    from inference.asr_whisper import WhisperAsr
    from inference.device import cpu_threads
    from inference.whisper_weights import whisper_base_dir

    if config.whisper_model:
        model_dir = Path(config.whisper_model)
        if not (model_dir / "model.bin").exists():
            raise ModelUnavailable(
                f"VOICEMOOD_WHISPER_MODEL={model_dir} holds no CTranslate2 model.bin"
            )
    else:
        model_dir = whisper_base_dir(Path(config.models_dir))
    return WhisperAsr(
        model_dir, device=device, languages=config.language_list,
        cpu_threads=cpu_threads() if device == "cpu" else 0,
        short_windows=config.whisper_short_windows,
    )


def load_text(config: InferenceConfig, device: str) -> TextEmotionBackend | None:
    """The text-emotion backend the config asks for (None when off).

    One model reads every language; per-language models (``zh=...,en=...``, see
    inference/text_emotion_by_language.py) read theirs, and the offline words model reads
    the languages without a classifier (under ``auto`` also those whose classifier is not
    downloaded or fails to load).
    """
    from inference.text_emotion_by_language import (
        ANY,
        ByLanguageText,
        labels_for,
        parse_text_labels,
        parse_text_models,
    )

    def offline() -> TextEmotionBackend:
        from inference.text_emotion_lexicon import LexiconTextEmotion

        return LexiconTextEmotion()

    choice = config.text_emotion_backend
    if choice in ("off", "lexicon"):
        return None if choice == "off" else offline()
    try:
        models = parse_text_models(config.text_emotion_model)
    except ValueError as exc:
        raise ModelUnavailable(str(exc)) from exc
    if set(models) <= {ANY}:

        def full() -> TextEmotionBackend:
            from inference.text_emotion_transformers import load_transformers_text

            return load_transformers_text(config, device)

        return _load_tier(config, choice, "transformers", models.get(ANY, ""), full, offline)

    from inference.text_emotion_transformers import load_transformers_model

    labels = parse_text_labels(config.text_emotion_labels)
    classifiers: dict[str, TextEmotionBackend] = {}
    for lang, model_id in models.items():
        if choice == "auto" and not _local(model_id, Path(config.models_dir)):
            continue
        try:
            classifiers[lang] = load_transformers_model(model_id, labels_for(labels, lang),
                                                        config, device)
        except ModelUnavailable as exc:
            if choice == "transformers":
                raise
            log.warning("text model for %s unavailable (%s); using the words model", lang, exc)
    words = offline()
    if not classifiers:
        return words
    info = ModelInfo(
        "text_emotion", "full", ",".join(f"{k}={c.info.model}" for k, c in classifiers.items()),
        device=next(iter(classifiers.values())).info.device,
        detail="per language; words model for "
        + "".join(f"{lang}, " for lang in models if lang not in classifiers)
        + "any other language",
    )
    return ByLanguageText(classifiers, words, info)


def load_voice(config: InferenceConfig, device: str,
               asr: AsrBackend | None = None) -> VoiceEmotionBackend | None:
    """The voice-emotion backend the config asks for (None when off).

    Under ``auto``, when emotion2vec is not local and ``asr`` is SenseVoice, the voice
    reading is SenseVoice's own emotion tag (:class:`~inference.asr_sensevoice.AsrEmotion`).
    """
    from inference.asr_sensevoice import AsrEmotion, SenseVoiceAsr

    primary = getattr(asr, "primary", asr)
    if (isinstance(primary, SenseVoiceAsr) and config.voice_emotion_backend == "auto"
            and not (config.voice_emotion_model
                     and _local(config.voice_emotion_model, Path(config.models_dir)))):
        return AsrEmotion(primary.info)

    def full() -> VoiceEmotionBackend:
        from inference.voice_emotion2vec import load_emotion2vec

        return load_emotion2vec(config, device)

    def offline() -> VoiceEmotionBackend:
        from inference.voice_prosody import ProsodyVoiceEmotion

        return ProsodyVoiceEmotion()

    return _load_tier(config, config.voice_emotion_backend, "emotion2vec",
                          config.voice_emotion_model, full, offline)


def _load_tier(config: InferenceConfig, choice: str, full_name: str, model: str,
                   full: Callable[[], T], offline: Callable[[], T]) -> T | None:
    """Off, the full tier (forced, or `auto` with local weights) or the offline tier.

    An `auto` full tier that fails to load falls back to the offline tier; a forced one raises.
    """
    if choice == "off":
        return None
    if choice == full_name or (
        choice == "auto" and model and _local(model, Path(config.models_dir))
    ):
        try:
            return full()
        except ModelUnavailable as exc:
            if choice == full_name:
                raise
            log.warning("%s unavailable (%s); using the offline tier", full_name, exc)
    return offline()
