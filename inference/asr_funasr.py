"""Full-tier speech recognition: funasr Paraformer (+ FSMN VAD, + CT-Transformer punctuation).

What funasr 1.4.16 does with a batch, and why :class:`FunasrAsr` calls it the way it does:

* Without a VAD model, ``AutoModel.generate(input=[clip, clip, ...], batch_size=n)`` pads the
  clips and runs them through Paraformer as one batch, returning one result per clip, in
  order, except when *no* clip yields a token: then Paraformer returns nothing and funasr
  makes that a single ``{"text": ""}`` for the whole batch. A count mismatch is therefore
  retried clip by clip.
* With a VAD model, funasr runs the VAD per clip, then decodes that clip's segments (on CPU
  one segment at a time: it sets the batch size to 0). A list input works, but a clip whose
  segments decode to no text is *dropped* from the output list, and all results of a list
  share one random ``key``, so they cannot be matched back to their clips. With VAD on, each
  clip therefore gets its own ``generate()`` call (this costs nothing on CPU, where funasr
  does not batch across clips anyway).
* In a padded batch, funasr's ``cif_v1`` raises ``IndexError`` when the last clip(s) fire
  no token while an earlier one does (a short or silent clip at the end). Clips are sent
  shortest first, which makes that rare, and a failed batch is retried clip by clip, where
  the no-token case is handled.
* funasr fails on clips shorter than one 25 ms frame (``ValueError`` from the fbank), so
  such clips are answered with an empty transcript without calling the model.
* Paraformer with timestamps (SeACo-Paraformer, the ``paraformer-zh`` default, and every VAD
  run) joins Chinese characters with spaces (``"你 好"``); :func:`clean_transcript` removes
  spaces between CJK characters and keeps them between Latin words.
* ``import funasr`` takes ~4 s and sets the root logger to INFO with a stderr handler; funasr
  also logs INFO lines through the root logger on every load and sets torch's global thread
  count to 4. :func:`import_funasr` and :func:`build_automodel` undo or prevent each of these.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ModelUnavailable
from .model_paths import resolve_model_source
from .types import ModelInfo, Transcript

if TYPE_CHECKING:
    from inference.config import InferenceConfig

    from .types import Clip

log = logging.getLogger(__name__)

#: One 25 ms fbank frame: shorter clips crash funasr's fbank, and cannot hold a word anyway,
#: so they get an empty transcript without a model call.
FBANK_MIN_SAMPLES = 400
#: Dynamic batch budget (seconds of audio) handed to funasr's VAD path.
BATCH_SIZE_S = 300

# CJK radicals, punctuation, kana, ideographs (ext. A, unified, compatibility), full-width forms.
_CJK = (
    r"\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uf900-\ufaff\uff00-\uffef"
)
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_TAGS = re.compile(r"<\|[^|]*\|>")
_SPACES = re.compile(r"\s+")

_import_lock = threading.Lock()


class _DropFunasrChatter(logging.Filter):
    """Drop funasr's chatter logged straight through the root logger.

    That is every INFO line (several per model load) and the "trust_remote_code: False"
    warning it repeats on each load; funasr's real warnings and errors pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "/funasr/" not in record.pathname.replace("\\", "/"):
            return True
        if record.levelno < logging.WARNING:
            return False
        return not str(record.msg).startswith("trust_remote_code")


_FILTER = _DropFunasrChatter()


def import_funasr() -> Any:
    """Import funasr once, leaving the root logger as it was, and return ``AutoModel``."""
    with _import_lock:
        root = logging.getLogger()
        level, handlers = root.level, list(root.handlers)
        try:
            from funasr import AutoModel
        except Exception as exc:  # noqa: BLE001 - any import failure means "not installed right"
            raise ModelUnavailable(
                f"funasr cannot be imported ({type(exc).__name__}: {exc}); install the full "
                "tier's dependencies (funasr, torch, kaldi-native-fbank)"
            ) from exc
        finally:
            root.setLevel(level)
            root.handlers[:] = handlers
        if _FILTER not in root.filters:
            root.addFilter(_FILTER)
        return AutoModel


@contextlib.contextmanager
def _captured_prints() -> Iterator[io.StringIO]:
    """Capture what funasr prints while it loads (it reports missing weights with print)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield buffer
    finally:
        # AutoModel() calls logging.basicConfig(), which configures an unconfigured root.
        root.setLevel(level)
        root.handlers[:] = handlers


def build_automodel(component: str, **kwargs: Any) -> Any:
    """Build ``funasr.AutoModel(**kwargs)`` quietly; raise :class:`ModelUnavailable` on failure.

    Adds ``disable_update`` (no PyPI version check), ``disable_pbar`` and ``ncpu`` = torch's
    current thread count (funasr would otherwise set it to 4 for the whole process). Weights
    that funasr reports as missing from a checkpoint are logged as warnings.
    """
    import torch

    auto_model = import_funasr()
    kwargs = {
        "disable_update": True,
        "disable_pbar": True,
        "log_level": "ERROR",
        "ncpu": torch.get_num_threads(),
        **kwargs,
    }
    with _captured_prints() as printed:
        try:
            model = auto_model(**kwargs)
        except Exception as exc:  # noqa: BLE001 - funasr raises anything from assert to KeyError
            hint = " ".join(
                line.strip() for line in printed.getvalue().splitlines() if "failed" in line
            )
            raise ModelUnavailable(
                f"could not load the {component} model {kwargs.get('model')!r}: "
                f"{type(exc).__name__}: {exc}" + (f" ({hint})" if hint else "")
            ) from exc
    missing = [line for line in printed.getvalue().splitlines() if "miss key" in line]
    if missing:
        log.warning(
            "%s model %s: %d weights missing from the checkpoint (left random), e.g. %s",
            component, kwargs.get("model"), len(missing), missing[0],
        )
    return model


def clean_transcript(text: str) -> str:
    """Tidy funasr output: drop ``<|tags|>``, spaces between CJK characters, extra spaces."""
    text = _TAGS.sub("", text)
    text = _CJK_GAP.sub("", text)
    return _SPACES.sub(" ", text).strip()


#: Language tags SenseVoice-style models put in their output (``<|en|><|NEUTRAL|>...``).
_LANG_TAG = re.compile(r"<\|(zh|en|yue|ja|ko)\|>")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def language_of(raw_text: str) -> str:
    """The language of a funasr transcript: the model's own tag when it gives one, else the
    script its words are written in (``""`` when there are none).

    Paraformer reports no language, and its model name says only what it was trained on:
    an English note through ``paraformer-zh`` comes out in Latin letters, and must be read
    with the English lexicon. Each Han character counts as a word, as Latin words do, so
    "我用iPhone打电话" is Chinese and "OK 好" a tie, which goes to Chinese.
    """
    tagged = _LANG_TAG.search(raw_text)
    if tagged:
        return tagged.group(1)
    text = _TAGS.sub("", raw_text)
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    han = len(_HAN.findall(text))
    latin = len(_LATIN_WORD.findall(text))
    if not han and not latin:
        return ""
    return "zh" if han >= latin else "en"


class FunasrAsr:
    """:class:`~inference.types.AsrBackend` over a funasr ``AutoModel``."""

    #: Extra keyword arguments of every ``generate()`` call (SenseVoice sets its own).
    generate_kwargs: dict[str, Any] = {}

    def __init__(self, model: Any, info: ModelInfo, *, vad: bool) -> None:
        self._model = model
        self._vad = vad
        self._lock = threading.Lock()  # AutoModel rewrites its own kwargs on every call
        self.info = info

    @property
    def automodel(self) -> Any:
        """The underlying ``funasr.AutoModel`` (for diagnostics and tests)."""
        return self._model

    def _generate(self, data: Any, **cfg: Any) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._model.generate(input=data, **self.generate_kwargs, **cfg))

    def finish(self, raw: str) -> Transcript:
        """The transcript of one clip from the model's raw text."""
        return Transcript(text=clean_transcript(raw), language=language_of(raw),
                          model=self.info.model)

    def _one(self, clip: np.ndarray) -> str:
        if len(clip) < FBANK_MIN_SAMPLES:
            return ""
        results = self._generate(clip, batch_size_s=BATCH_SIZE_S)
        # With VAD, funasr returns [] when no segment decoded to text.
        return str(results[0].get("text", "")) if results else ""

    def transcribe_batch(self, clips: Sequence[Clip]) -> list[Transcript]:
        """Transcribe each clip (float32 mono 16 kHz); the result is parallel to ``clips``."""
        arrays = [np.ascontiguousarray(c, dtype=np.float32).reshape(-1) for c in clips]
        texts = [""] * len(arrays)
        # Shortest first: funasr's CIF crashes when the *last* clip of a batch fires no token,
        # and the longest clip is the least likely to (see module docstring).
        todo = sorted((i for i, a in enumerate(arrays) if len(a) >= FBANK_MIN_SAMPLES),
                      key=lambda i: len(arrays[i]))
        batched = None
        if not self._vad and len(todo) > 1:
            try:
                batched = self._generate([arrays[i] for i in todo], batch_size=len(todo))
            except (IndexError, RuntimeError) as exc:
                log.debug("batched Paraformer call failed (%s); retrying clip by clip", exc)
        if batched is not None and len(batched) == len(todo):
            for i, result in zip(todo, batched, strict=True):
                texts[i] = str(result.get("text", ""))
        else:
            for i in todo:
                texts[i] = self._one(arrays[i])
        return [self.finish(t) for t in texts]


def load_funasr_asr(settings: InferenceConfig, device: str,
                    backend_class: type[FunasrAsr] | None = None) -> FunasrAsr:
    """Load the full-tier ASR (``settings.asr_model`` + optional VAD and punctuation).

    Each model comes from a local folder when :func:`~inference.model_paths.local_model_dir`
    finds one; otherwise from the hub named by ``settings.model_hub``, which is probed first
    (2 s) so that a machine without network fails fast with :class:`ModelUnavailable`
    instead of funasr's 22 s of retries and a misleading "not registered" error. An empty
    ``vad_model``/``punc_model`` disables that stage.
    """
    backend_class = backend_class or FunasrAsr
    hub = settings.model_hub
    models_dir = settings.models_dir
    asr_src = resolve_model_source(
        settings.asr_model, models_dir, hub, component="ASR", env_var="VOICEMOOD_ASR_MODEL"
    )
    sensevoice = is_sensevoice(asr_src)
    kwargs: dict[str, Any] = {"model": asr_src, "device": device, "hub": hub}
    stages = ["sensevoice" if sensevoice else "paraformer"]
    extra: dict[str, str] = {"configured": settings.asr_model}
    if settings.vad_model.strip():
        kwargs["vad_model"] = resolve_model_source(
            settings.vad_model, models_dir, hub, component="VAD", env_var="VOICEMOOD_VAD_MODEL"
        )
        stages.append("vad")
        extra["vad_model"] = kwargs["vad_model"]
    if settings.punc_model.strip() and not sensevoice:  # SenseVoice punctuates itself
        kwargs["punc_model"] = resolve_model_source(
            settings.punc_model,
            models_dir,
            hub,
            component="punctuation",
            env_var="VOICEMOOD_PUNC_MODEL",
        )
        stages.append("punc")
        extra["punc_model"] = kwargs["punc_model"]
    model = build_automodel("ASR", **kwargs)
    actual_device = str(model.kwargs.get("device", device))
    info = ModelInfo(
        component="asr",
        tier="full",
        model=asr_src,
        device=actual_device,
        detail="+".join(stages),
        extra=extra,
    )
    return backend_class(model, info, vad="vad_model" in kwargs)


def model_class(source: str) -> str:
    """The ``model:`` class named by a local funasr folder's ``config.yaml`` ("" if none)."""
    config = Path(source) / "config.yaml"
    if not config.is_file():
        return ""
    found = re.search(r"^model:\s*['\"]?([\w.]+)", config.read_text("utf-8", "replace"), re.M)
    return found.group(1) if found else ""


def is_sensevoice(source: str) -> bool:
    """True for SenseVoice: a folder whose config.yaml names the class, or (no such folder) a
    hub id that names it. The class wins over the name, so a Paraformer fine-tune kept in a
    folder called "sensevoice-..." is still read as Paraformer."""
    found = model_class(source)
    return "sensevoice" in (found or source).lower()
