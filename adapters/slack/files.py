"""Slack files: which ones are audio, where their message is, and an authorised, bounded
download.

Slack hands the app file objects (in ``message`` events, ``files.info`` and ``files.list``)
whose private URLs only answer with ``Authorization: Bearer <bot token>``. The token goes
only to the exact origin (scheme, host and port) of Slack's file host or of
``SLACK_API_BASE_URL`` (a proxy or a test double): never to another port or over plain HTTP
of a Slack host, and redirects are followed only within those origins.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp

from adapters.download import fetch_limited
from bot.core.intake import DownloadFailed, is_audio

#: Slack's own recorded clips.
CLIP_SUBTYPES = frozenset({"slack_audio", "slack_video"})
#: Origins (scheme, host, port) that may receive the bot token, besides the API base's.
SLACK_FILE_ORIGINS = frozenset({("https", "files.slack.com", 443)})
_DEFAULT_PORTS = {"https": 443, "http": 80}

Origin = tuple[str, str, int]


def is_audio_file(file: dict[str, Any]) -> bool:
    """Whether a Slack file object is something to analyse: one of Slack's clips, or audio
    or video by :func:`bot.core.intake.is_audio` (Slack's ``filetype`` is a file ending)."""
    if file.get("subtype") in CLIP_SUBTYPES:
        return True
    filetype = str(file.get("filetype") or "")
    return (is_audio(file.get("mimetype"), file.get("name"))
            or (bool(filetype) and is_audio(None, f"file.{filetype}")))


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


def size_of(file: dict[str, Any]) -> int | None:
    """The size Slack announces for the file, if any (a claim: the download checks again)."""
    try:
        return int(file["size"]) if file.get("size") is not None else None
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


def origin(url: str) -> Origin | None:
    """``(scheme, host, port)`` of ``url``, the port filled in; None when it has none."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number
        return None
    return (scheme, host, port) if host and port else None


def token_allowed(url: str, api_base_url: str) -> bool:
    """Whether the bot token may go to ``url``: exactly Slack's file host over HTTPS, or
    exactly the origin of the configured API base."""
    target = origin(url)
    return target is not None and (target in SLACK_FILE_ORIGINS or target == origin(api_base_url))


async def download_file(session: aiohttp.ClientSession, url: str, token: str, *,
                        api_base_url: str, max_bytes: int) -> bytes:
    """Fetch a private Slack file with the bot token, never more than ``max_bytes``.

    Raises :class:`~bot.core.intake.DownloadFailed` (also for a URL the token may not go to, and
    for Slack's sign-in page, which it sends with status 200 when it won't authorise) and
    :class:`~inference.errors.TooLarge`.
    """
    if not token_allowed(url, api_base_url):
        raise DownloadFailed("the file's URL is not one the bot token may go to")
    return await fetch_limited(
        session, url, max_bytes=max_bytes, headers={"Authorization": f"Bearer {token}"},
        may_follow=lambda target: token_allowed(target, api_base_url), reject_html=True)
