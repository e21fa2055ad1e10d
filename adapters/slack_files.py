"""Slack files: which ones are audio, where their message is, and a bounded, authorised download.

Slack hands the app file objects (in ``message`` events, ``files.info`` and ``files.list``)
whose private URLs only answer with ``Authorization: Bearer <bot token>``. The token is
sent only to Slack's own hosts (or to the host of ``SLACK_API_BASE_URL``, for a proxy or a
test double), never to an arbitrary URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp

#: ``filetype`` values Slack gives audio and video files (video: its sound track is analysed).
AUDIO_FILETYPES = frozenset({
    "aac", "aif", "aiff", "amr", "caf", "flac", "m4a", "m4v", "mov", "mp3", "mp4", "mpg",
    "mpeg", "oga", "ogg", "opus", "wav", "webm", "wma", "3gp",
})
#: Slack's own recorded clips.
CLIP_SUBTYPES = frozenset({"slack_audio", "slack_video"})
#: Hosts that may receive the bot token (besides the configured API host).
SLACK_HOST_SUFFIXES = (".slack.com",)
DOWNLOAD_TIMEOUT_S = 120.0
_CHUNK = 64 * 1024


class DownloadFailed(Exception):
    """The file could not be fetched (network, HTTP status, login page instead of the file)."""


class DownloadTooLarge(Exception):
    """The file turned out larger than the limit while it was streaming in."""


def is_audio_file(file: dict[str, Any]) -> bool:
    """Whether a Slack file object is something to analyse: a clip, audio or video."""
    if file.get("subtype") in CLIP_SUBTYPES:
        return True
    mimetype = str(file.get("mimetype") or "").lower()
    if mimetype.startswith(("audio/", "video/")):
        return True
    if str(file.get("filetype") or "").lower() in AUDIO_FILETYPES:
        return True
    name = str(file.get("name") or "")
    return "." in name and name.rsplit(".", 1)[1].lower() in AUDIO_FILETYPES


def needs_file_info(file: dict[str, Any]) -> bool:
    """Whether the object is a stub (Slack Connect, partial events) that files.info must fill."""
    if file.get("file_access") == "check_file_info":
        return True
    return not (file.get("url_private_download") or file.get("url_private")) or not (
        file.get("mimetype") or file.get("filetype")
    )


def duration_s(file: dict[str, Any]) -> float | None:
    """The length Slack reports for a clip or media file, if it reports one."""
    ms = file.get("duration_ms")
    try:
        return float(ms) / 1000.0 if ms else None
    except (TypeError, ValueError):
        return None


def message_ts(file: dict[str, Any], channel: str) -> str | None:
    """The ``ts`` of the message that shared ``file`` in ``channel`` (from ``shares``), if known."""
    shares = file.get("shares") or {}
    for kind in ("public", "private"):
        for share in (shares.get(kind) or {}).get(channel) or []:
            ts = share.get("thread_ts") or share.get("ts")
            if ts:
                return str(ts)
    return None


def token_allowed(url: str, api_base_url: str) -> bool:
    """Whether the bot token may go to ``url``: Slack over HTTPS, or the configured API host."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        return False
    api_host = (urlsplit(api_base_url).hostname or "").lower()
    if host == api_host:
        return True
    return parts.scheme == "https" and (host == "slack.com" or host.endswith(SLACK_HOST_SUFFIXES))


async def download_file(session: aiohttp.ClientSession, url: str, token: str, *,
                        max_bytes: int) -> bytes:
    """Fetch a private Slack file with the bot token, refusing more than ``max_bytes``.

    Raises :class:`DownloadTooLarge` as soon as the body passes the limit (so a lying
    ``size`` cannot fill the memory) and :class:`DownloadFailed` for everything else.
    Error texts never contain the token or the URL (which the caller may log).
    """
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
    try:
        async with session.get(url, headers=headers, timeout=timeout) as resp:
            if resp.status != 200:
                raise DownloadFailed(f"HTTP {resp.status}")
            if resp.content_type == "text/html":
                # Slack answers a request it won't authorise with its sign-in page and 200.
                raise DownloadFailed("got an HTML page instead of the file (is the files:read "
                                     "scope granted and the app reinstalled?)")
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise DownloadTooLarge(f"{resp.content_length} bytes")
            body = bytearray()
            async for chunk in resp.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise DownloadTooLarge(f"more than {max_bytes} bytes")
            return bytes(body)
    except (DownloadFailed, DownloadTooLarge):
        raise
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DownloadFailed(type(exc).__name__) from None
