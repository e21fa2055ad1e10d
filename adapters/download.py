"""Bounded downloads of a note's file, shared by the Telegram and Slack front ends.

A platform's announcement of a file's size is only a claim: the body is streamed and the
reading stops as soon as it passes the byte limit, and the whole transfer has a deadline.
Redirects are followed by hand, and only to URLs the caller allows (the Slack token must
never follow a redirect to another host).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from urllib.parse import urljoin

import aiohttp

from bot.core.intake import DownloadFailed
from inference.errors import TooLarge

#: Longest a single download may take, redirects included (seconds).
DOWNLOAD_TIMEOUT_S = 120.0
#: Redirect hops followed before giving up.
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def fetch_limited(session: aiohttp.ClientSession, url: str, *, max_bytes: int,
                        headers: Mapping[str, str] | None = None,
                        may_follow: Callable[[str], bool] = lambda url: False,
                        reject_html: bool = False,
                        timeout_s: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The body at ``url``, read in chunks and never more than ``max_bytes`` of it.

    Raises :class:`~inference.errors.TooLarge` as soon as the body passes the limit (a
    ``Content-Length`` over it is refused before reading) and
    :class:`~bot.core.intake.DownloadFailed` for everything else: a status other than 200, a
    redirect to a URL ``may_follow`` refuses (``headers`` go along to those it allows), an
    HTML page where a file was expected (``reject_html``: Slack's sign-in page), a network
    error, the deadline. Error texts never hold the URL or the headers (tokens).
    """
    try:
        async with asyncio.timeout(timeout_s):
            for _ in range(MAX_REDIRECTS + 1):
                async with session.get(url, headers=headers, allow_redirects=False) as resp:
                    if resp.status in _REDIRECTS:
                        url = urljoin(url, resp.headers.get("Location", ""))
                        if not may_follow(url):
                            raise DownloadFailed(f"HTTP {resp.status} to a URL we may not use")
                        continue
                    return await _read(resp, max_bytes, reject_html)
            raise DownloadFailed("too many redirects")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DownloadFailed(type(exc).__name__) from None


async def _read(resp: aiohttp.ClientResponse, max_bytes: int, reject_html: bool) -> bytes:
    if resp.status != 200:
        raise DownloadFailed(f"HTTP {resp.status}")
    if reject_html and resp.content_type == "text/html":
        raise DownloadFailed("got an HTML page instead of the file")
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise TooLarge(f"{resp.content_length} bytes announced")
    body = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise TooLarge(f"more than {max_bytes} bytes")
    return bytes(body)
