"""Fetch the full-tier models into ``models_dir`` (the ``voicemood models download`` command).

Each model lands in ``models_dir/<hub id with "/" replaced by "--">``, the first place
:func:`~inference.model_paths.local_model_dir` looks, so the bot then loads it offline. The
funasr models (ASR, VAD, punctuation, emotion2vec) come from ModelScope, or from Hugging Face
when ``VOICEMOOD_MODEL_HUB=hf``; the text classifier always comes from Hugging Face.

Before any download the hubs are probed with a 2 s TCP connect, so a machine without
network gets a :class:`~inference.errors.ModelUnavailable` naming the folders to copy by
hand, instead of minutes of retries.

A model is downloaded into a hidden ``models_dir/.partial-<folder>-<random>`` folder,
checked, and only then renamed to its final name, so an interrupted or corrupt download
never leaves a folder that ``auto`` would load (it looks only at final names; a killed
download's leftover ``.partial-*`` folders are removed by the next download). The check for
a Hugging Face download reads the repository's file list again and compares every file:
its size, and its sha256 (LFS files) or git blob hash (the others), since huggingface_hub
itself checks sizes only. A ModelScope download must hold a model marker file
(``config.yaml``/``config.json``).

Per-language text models (``zh=...,en=...``) are one download each.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelUnavailable
from .model_paths import (
    MODEL_MARKERS,
    folder_name,
    hub_host,
    hub_model_id,
    hub_reachable,
    local_model_dir,
    looks_like_path,
)

if TYPE_CHECKING:
    from inference.config import InferenceConfig

log = logging.getLogger(__name__)

#: Component names accepted by :func:`download_models`, in download order.
COMPONENTS: tuple[str, ...] = ("asr", "vad", "punc", "voice_emotion", "text_emotion")
#: Prefix of the folders a download is written to before it is checked and renamed.
PARTIAL_PREFIX = ".partial-"

_HUB_WEB = {"ms": "https://www.modelscope.cn/models/", "hf": "https://huggingface.co/"}


@dataclass(frozen=True)
class DownloadItem:
    """One model to fetch."""

    component: str
    configured: str  # the id as configured (may be a funasr short name)
    hub: str  # "ms" or "hf"
    repo_id: str  # the full id on that hub
    target: Path  # where it goes

    @property
    def url(self) -> str:
        """The model's page on its hub, for people who copy it by hand."""
        return _HUB_WEB[self.hub] + self.repo_id


def _configured(settings: InferenceConfig, component: str) -> list[tuple[str, str, bool]]:
    """(model id, hub, wanted when no component list is given) of each model of
    ``component`` (several for per-language text models)."""
    funasr_hub = "hf" if settings.model_hub == "hf" else "ms"
    if component == "asr":
        return [(settings.asr_model, funasr_hub, settings.asr_backend != "whisper")]
    if component == "vad":
        return [(settings.vad_model, funasr_hub, settings.asr_backend != "whisper")]
    if component == "punc":
        # SenseVoice punctuates itself: its punctuation model would never be loaded.
        from .asr_funasr import is_sensevoice

        wanted = settings.asr_backend != "whisper" and not is_sensevoice(settings.asr_model)
        return [(settings.punc_model, funasr_hub, wanted)]
    if component == "voice_emotion":
        wanted = settings.voice_emotion_backend in ("auto", "emotion2vec")
        return [(settings.voice_emotion_model, funasr_hub, wanted)]
    if component == "text_emotion":
        from .text_emotion_by_language import parse_text_models

        wanted = settings.text_emotion_backend in ("auto", "transformers")
        try:
            models = parse_text_models(settings.text_emotion_model)
        except ValueError as exc:
            raise ModelUnavailable(str(exc)) from exc
        return [(model_id, "hf", wanted) for model_id in models.values()]
    raise ValueError(f"unknown component {component!r}; choose from {', '.join(COMPONENTS)}")


def plan_downloads(
    settings: InferenceConfig, components: list[str] | None = None
) -> tuple[list[tuple[str, Path]], list[DownloadItem]]:
    """Split the configured models into (already local, to download).

    ``components`` limits the work to those names (see :data:`COMPONENTS`); ``None`` means
    every component whose backend setting can use the full tier. Components with an empty
    model id are skipped (empty = disabled).
    """
    models_dir = Path(settings.models_dir)
    present: list[tuple[str, Path]] = []
    missing: list[DownloadItem] = []
    for component, (model_id, hub, wanted) in (
        (c, entry) for c in components or list(COMPONENTS) for entry in _configured(settings, c)
    ):
        model_id = (model_id or "").strip()
        if not model_id or (components is None and not wanted):
            continue
        local = local_model_dir(model_id, models_dir, hub)
        if local is not None:
            present.append((component, local))
            continue
        if looks_like_path(model_id):
            raise ModelUnavailable(
                f"the {component} model is set to the folder {model_id!r}, which holds no "
                "model; a folder cannot be downloaded: point the setting at a hub id"
            )
        repo_id = hub_model_id(model_id, hub)
        missing.append(
            DownloadItem(component, model_id, hub, repo_id, models_dir / folder_name(repo_id))
        )
    return present, missing


def _fetch(item: DownloadItem) -> Path:
    """Download ``item`` into a partial folder, check it, then rename it to its target."""
    item.target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{item.target.name}-",
                                    dir=item.target.parent))
    try:
        if item.hub == "ms":
            from modelscope.hub.snapshot_download import snapshot_download as ms_snapshot

            ms_snapshot(item.repo_id, local_dir=str(partial))
        else:
            from huggingface_hub import snapshot_download as hf_snapshot

            hf_snapshot(repo_id=item.repo_id, local_dir=str(partial))
            verify_hf_download(item.repo_id, partial)
        # The hub clients' own bookkeeping (locks, metadata) is no part of the model.
        for meta in (".cache", "._____temp", ".mdl", ".msc", ".mv"):
            target = partial / meta
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()
        if not any((partial / marker).is_file() for marker in MODEL_MARKERS):
            raise ModelUnavailable(f"the download holds no {' / '.join(MODEL_MARKERS)}")
        if item.target.exists():  # an unusable leftover (auto found no model in it)
            shutil.rmtree(item.target)
        partial.rename(item.target)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return item.target


def verify_hf_download(repo_id: str, folder: Path) -> None:
    """Compare every file of ``repo_id`` on the hub with its copy in ``folder``.

    Raises :class:`ModelUnavailable` naming the first file that is missing, of another size,
    or whose sha256 (LFS) or git blob hash differs from what the hub lists.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    for entry in HfApi().list_repo_tree(repo_id, recursive=True):
        if not isinstance(entry, RepoFile):
            continue
        local = folder / entry.path
        if not local.is_file():
            raise ModelUnavailable(f"{entry.path} is missing from the download")
        size = local.stat().st_size
        expected = entry.lfs.size if entry.lfs is not None else entry.size
        if size != expected:
            raise ModelUnavailable(f"{entry.path} has {size} bytes, the hub lists {expected}")
        if entry.lfs is not None:
            digest, want = _file_hash(local, hashlib.sha256()), entry.lfs.sha256
        else:
            digest, want = _file_hash(local, hashlib.sha1(f"blob {size}\0".encode())), \
                entry.blob_id
        if digest != want:
            raise ModelUnavailable(f"{entry.path} is corrupt: its hash is {digest}, the hub "
                                   f"lists {want}")


def _file_hash(path: Path, digest: Any) -> str:
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return str(digest.hexdigest())


def remove_partial_downloads(models_dir: Path) -> list[Path]:
    """Delete the ``.partial-*`` folders a killed download left in ``models_dir``."""
    removed = []
    for leftover in Path(models_dir).glob(PARTIAL_PREFIX + "*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
    return removed


def download_models(
    settings: InferenceConfig, components: list[str] | None = None
) -> list[tuple[str, Path]]:
    """Make every configured full-tier model local; return ``(component, folder)`` pairs.

    Models already on disk are not fetched again. Raises
    :class:`~inference.errors.ModelUnavailable` within ~2 s per hub when a needed hub cannot
    be reached, listing the folders to copy into ``models_dir`` by hand; and when a download
    fails part-way (the error names the model).
    """
    present, missing = plan_downloads(settings, components)
    if not missing:
        return _in_order(present)

    unreachable = sorted({item.hub for item in missing if not hub_reachable(item.hub)})
    if unreachable:
        hosts = " / ".join(dict.fromkeys(hub_host(h) for h in unreachable))
        lines = [
            f"  {item.target}  <-  {item.url}"
            for item in missing
            if item.hub in unreachable
        ]
        raise ModelUnavailable(
            f"no network access to {hosts}; copy the model folders into "
            f"{settings.models_dir}/ by hand (each folder holds the model's files, e.g. "
            "config.yaml + model.pt, or config.json + weights):\n" + "\n".join(lines)
        )

    for leftover in remove_partial_downloads(Path(settings.models_dir)):
        log.info("removed %s, left by an interrupted download", leftover)
    done = list(present)
    for item in missing:
        log.info("downloading %s model %s from %s", item.component, item.repo_id, item.hub)
        try:
            path = _fetch(item)
        except Exception as exc:  # noqa: BLE001 - hub clients raise many kinds of errors
            raise ModelUnavailable(
                f"downloading the {item.component} model {item.repo_id} from "
                f"{hub_host(item.hub)} failed: {type(exc).__name__}: {exc}"
            ) from exc
        done.append((item.component, path))
    return _in_order(done)


def _in_order(pairs: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    return sorted(pairs, key=lambda pair: COMPONENTS.index(pair[0]))
