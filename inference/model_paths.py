"""Where the full-tier models live on disk, and whether a model hub can be reached.

A configured model id (``VOICEMOOD_ASR_MODEL`` and friends) may be:

* a directory path: used as is when it holds ``config.yaml`` or ``config.json``;
* a funasr short name such as ``paraformer-zh`` (see :data:`FUNASR_SHORT_NAMES_MS`);
* a hub id such as ``iic/emotion2vec_plus_base`` or
  ``IDEA-CCNL/Erlangshen-Roberta-110M-Sentiment``.

For names and ids, :func:`local_model_dir` looks, in order, in ``models_dir`` (folder name =
the id with ``/`` replaced by ``--``; both the short name and the full hub id are tried), the
ModelScope cache and the Hugging Face cache. It never touches the network.

The short-name tables copy ``funasr/download/name_maps_from_hub.py`` (funasr 1.4.16) so that
this module resolves names exactly as ``funasr.AutoModel`` does, without importing funasr
(4 s). Note that the same short name can mean different models on the two hubs:
``paraformer-zh`` is SeACo-Paraformer on ModelScope but plain Paraformer on Hugging Face.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path

#: funasr short names -> ModelScope ids (``hub="ms"``, funasr's default).
FUNASR_SHORT_NAMES_MS: dict[str, str] = {
    "paraformer": "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
    "paraformer-zh": "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
    "paraformer-en": "iic/speech_paraformer-large-vad-punc_asr_nat-en-16k-common-vocab10020",
    "paraformer-en-spk": "iic/speech_paraformer-large-vad-punc_asr_nat-en-16k-common-vocab10020",
    "paraformer-zh-streaming": (
        "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-online"
    ),
    "fsmn-vad": "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch",
    "ct-punc": "iic/punc_ct-transformer_cn-en-common-vocab471067-large",
    "ct-punc-c": "iic/punc_ct-transformer_zh-cn-common-vocab272727-pytorch",
    "fa-zh": "iic/speech_timestamp_prediction-v1-16k-offline",
    "cam++": "iic/speech_campplus_sv_zh-cn_16k-common",
    "emotion2vec_plus_large": "iic/emotion2vec_plus_large",
    "emotion2vec_plus_base": "iic/emotion2vec_plus_base",
    "emotion2vec_plus_seed": "iic/emotion2vec_plus_seed",
    # Not in funasr's table: SenseVoice is named by its hub id.
    "SenseVoiceSmall": "iic/SenseVoiceSmall",
}

#: funasr short names (and ModelScope ids) -> Hugging Face ids (``hub="hf"``).
FUNASR_SHORT_NAMES_HF: dict[str, str] = {
    "paraformer": "funasr/paraformer-zh",
    "paraformer-zh": "funasr/paraformer-zh",
    "paraformer-en": "funasr/paraformer-en",
    "paraformer-zh-streaming": "funasr/paraformer-zh-streaming",
    "fsmn-vad": "funasr/fsmn-vad",
    "ct-punc": "funasr/ct-punc",
    "ct-punc-c": "iic/punc_ct-transformer_zh-cn-common-vocab272727-pytorch",
    "fa-zh": "funasr/fa-zh",
    "cam++": "funasr/campplus",
    "emotion2vec_plus_large": "emotion2vec/emotion2vec_plus_large",
    "iic/emotion2vec_plus_large": "emotion2vec/emotion2vec_plus_large",
    "emotion2vec_plus_base": "emotion2vec/emotion2vec_plus_base",
    "iic/emotion2vec_plus_base": "emotion2vec/emotion2vec_plus_base",
    "emotion2vec_plus_seed": "emotion2vec/emotion2vec_plus_seed",
    "iic/emotion2vec_plus_seed": "emotion2vec/emotion2vec_plus_seed",
    # Not in funasr's table: SenseVoice-Small's Hugging Face home.
    "SenseVoiceSmall": "FunAudioLLM/SenseVoiceSmall",
    "iic/SenseVoiceSmall": "FunAudioLLM/SenseVoiceSmall",
}

#: Files whose presence marks a folder as a model folder (funasr / transformers).
MODEL_MARKERS: tuple[str, ...] = ("config.yaml", "config.json")


def hub_model_id(model_id: str, hub: str) -> str:
    """The full id ``funasr.AutoModel`` would fetch for ``model_id`` from ``hub`` ("ms"/"hf")."""
    table = FUNASR_SHORT_NAMES_HF if hub in ("hf", "huggingface") else FUNASR_SHORT_NAMES_MS
    return table.get(model_id, model_id)


def folder_name(model_id: str) -> str:
    """The folder name under ``models_dir`` for a hub id: ``iic/x`` -> ``iic--x``."""
    return model_id.strip().strip("/").replace("/", "--")


def looks_like_path(model_id: str) -> bool:
    """True when ``model_id`` is meant as a filesystem path rather than a hub id."""
    s = model_id.strip()
    return (
        s.startswith(("/", "./", "../", "~", "\\"))
        or (len(s) > 1 and s[1] == ":")  # Windows drive letter
        or s.count("/") > 1
        or Path(os.path.expanduser(s)).exists()
    )


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in MODEL_MARKERS)


def _candidate_ids(model_id: str, hub: str | None) -> list[str]:
    """``model_id`` and its full ids, the preferred ``hub``'s first."""
    hubs = ["hf", "ms"] if hub in ("hf", "huggingface") else ["ms", "hf"]
    ids = [model_id]
    for h in hubs:
        full = hub_model_id(model_id, h)
        if full not in ids:
            ids.append(full)
    return ids


def _modelscope_cache_dirs(model_id: str) -> list[Path]:
    root = Path(
        os.path.expanduser(
            os.getenv("MODELSCOPE_CACHE", str(Path.home() / ".cache" / "modelscope" / "hub"))
        )
    )
    # ModelScope stores dots in names as "___" in some versions.
    names = dict.fromkeys((model_id, model_id.replace(".", "___")))
    return [base / name for name in names for base in (root / "models", root)]


def _hf_cache_dirs(model_id: str) -> list[Path]:
    """The snapshot folder of ``model_id`` in the Hugging Face cache, if it is there."""
    if model_id.count("/") != 1:
        return []
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # transformers pulls it in; without it there is no HF cache to read
        return []
    for marker in MODEL_MARKERS:
        try:
            found = try_to_load_from_cache(model_id, marker)
        except Exception:  # noqa: BLE001 - an id the hub would reject is simply not cached
            return []
        if isinstance(found, str):
            return [Path(found).parent]
    return []


def local_model_dir(model_id: str, models_dir: Path, hub: str | None = None) -> Path | None:
    """Return a local directory that holds ``model_id``, or ``None``.

    ``model_id`` may be a directory (returned when it holds ``config.yaml``/``config.json``),
    a funasr short name or a hub id. Short names are expanded with both hubs' tables;
    ``hub`` ("ms" or "hf") only says which hub's names and cache to try first. An empty id
    means "component disabled" and gives ``None``. Offline: only the filesystem is read.
    """
    model_id = (model_id or "").strip()
    if not model_id:
        return None
    as_path = Path(os.path.expanduser(model_id))
    if _is_model_dir(as_path):
        return as_path.resolve()
    if looks_like_path(model_id):
        return None

    ids = _candidate_ids(model_id, hub)
    for candidate in ids:
        path = Path(models_dir) / folder_name(candidate)
        if _is_model_dir(path):
            return path.resolve()
    caches = [_modelscope_cache_dirs, _hf_cache_dirs]
    if hub in ("hf", "huggingface"):
        caches.reverse()
    for cache in caches:
        for candidate in ids:
            for path in cache(candidate):
                if _is_model_dir(path):
                    return path.resolve()
    return None


# --- hub reachability --------------------------------------------------------------------

def hub_host(hub: str) -> str:
    """Host name of a hub: "ms" -> ModelScope, "hf" -> Hugging Face (honours env overrides)."""
    if hub in ("hf", "huggingface"):
        endpoint = os.getenv("HF_ENDPOINT", "https://huggingface.co")
        return urllib.parse.urlsplit(endpoint).hostname or "huggingface.co"
    domain = os.getenv("MODELSCOPE_DOMAIN", "www.modelscope.cn")
    return urllib.parse.urlsplit(domain if "//" in domain else "//" + domain).hostname or domain


def hub_port(hub: str) -> int:
    """The port of a hub's endpoint: 443, or the one ``HF_ENDPOINT`` names (a mirror, or the
    tests' fake hub on 127.0.0.1)."""
    if hub in ("hf", "huggingface"):
        parts = urllib.parse.urlsplit(os.getenv("HF_ENDPOINT", "https://huggingface.co"))
        return parts.port or (80 if parts.scheme == "http" else 443)
    return 443


def _probe_target(host: str, port: int = 443) -> tuple[str, int]:
    """Where a TCP connect tells whether ``host`` is reachable: the proxy, when one is set."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get("https") or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        parts = urllib.parse.urlsplit(proxy if "//" in proxy else "//" + proxy)
        if parts.hostname:
            return parts.hostname, parts.port or 80
    return host, port


def host_reachable(host: str, timeout: float = 2.0, port: int = 443) -> bool:
    """True when a TCP connection to ``host`` (or the HTTPS proxy) opens within ``timeout``.

    DNS resolution is not covered by socket timeouts, so the probe runs in a daemon thread
    and is abandoned after ``timeout``: a machine without network answers in ~2 s at most.
    """
    target = _probe_target(host, port)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(target, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name=f"probe-{host}", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def hub_reachable(hub: str, timeout: float = 2.0) -> bool:
    """True when ``hub`` ("ms" or "hf") answers a TCP connect within ``timeout`` seconds.

    With ``HF_HUB_OFFLINE=1`` the Hugging Face hub counts as unreachable without a probe,
    as it does for huggingface_hub itself.
    """
    offline = os.getenv("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if hub in ("hf", "huggingface") and offline:
        return False
    return host_reachable(hub_host(hub), timeout, hub_port(hub))


def resolve_model_source(
    model_id: str,
    models_dir: Path,
    hub: str,
    *,
    component: str,
    env_var: str,
    timeout: float = 2.0,
) -> str:
    """What to hand a loader for ``model_id``: a local folder, else the hub id to fetch.

    Raises :class:`~inference.errors.ModelUnavailable` with a message a user can act on when
    the id is a path that holds no model, or when the model is not local and ``hub`` cannot
    be reached (detected with a ``timeout``-second probe, not a minute of library retries).
    """
    from .errors import ModelUnavailable

    model_id = (model_id or "").strip()
    if not model_id:
        raise ModelUnavailable(f"no {component} model is configured ({env_var} is empty)")
    local = local_model_dir(model_id, models_dir, hub)
    if local is not None:
        return str(local)
    if looks_like_path(model_id):
        raise ModelUnavailable(
            f"the {component} model folder {model_id!r} does not exist or holds no "
            f"{' / '.join(MODEL_MARKERS)}; fix {env_var}"
        )
    full_id = hub_model_id(model_id, hub)
    if not hub_reachable(hub, timeout):
        target = Path(models_dir) / folder_name(full_id)
        raise ModelUnavailable(
            f"the {component} model {model_id!r} is not downloaded and the model hub "
            f"({hub_host(hub)}) cannot be reached from this machine (no network access?). "
            f"Run `voicemood models download` where the hub is reachable and copy the folder "
            f"to {target}, or set {env_var} to a local model folder."
        )
    return full_id
