"""Checks a command runs before it loads any model, so a bad setting costs no waiting.

Loading the models takes seconds to minutes; a setting that cannot be honoured (a GPU the
machine lacks, a port someone else holds) is refused first, in one line that names the
setting, and the command exits non-zero. Each check raises :class:`Refusal` with that line.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings

log = logging.getLogger(__name__)


class Refusal(Exception):
    """A setting this process cannot honour; ``str()`` is the one line to print."""

    #: Exit status: 2, like every other bad setting or argument.
    status = 2


class LoadFailure(Refusal):
    """The models did not load; the one line says why (the traceback is logged at DEBUG)."""

    status = 1

    def __init__(self, cause: BaseException) -> None:
        # Library errors can span lines (pydantic, funasr): squeeze to one.
        why = " ".join(str(cause).split()) or type(cause).__name__
        super().__init__(f"cannot load the models: {why}")


async def open_service_or_refuse(settings: Settings) -> AnalysisService:
    """The analysis service, or a :class:`LoadFailure` in one line.

    Whatever stops the models from loading (a missing weight file, a broken install, a GPU
    that vanished) ends the command with one clear line; the traceback goes to the log at
    DEBUG level.
    """
    from app.wiring import open_service

    try:
        return await open_service(settings)
    except Exception as exc:
        log.debug("loading the models failed", exc_info=True)
        raise LoadFailure(exc) from exc


def settings_error_line(exc: ValidationError) -> str:
    """Pydantic's several-line report as one line: each bad setting and why.

    The input value is left out on purpose: it may be a token or a password.
    """
    parts = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error.get("loc", ())).upper()
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(message if not name or name in message else f"{name}: {message}")
    return "; ".join(parts) or str(exc).splitlines()[0]


def check_device(settings: Settings) -> None:
    """Refuse ``VOICEMOOD_DEVICE=cuda[:N]`` on a machine without that GPU.

    ``auto`` and ``cpu`` always work, so torch (seconds to import) is only asked about CUDA.
    """
    if not settings.device.startswith("cuda"):
        return
    from inference.device import resolve_device

    try:
        resolve_device(settings.device)
    except (RuntimeError, ValueError) as exc:
        raise Refusal(str(exc)) from None


def metrics_host(settings: Settings) -> str:
    """Where the health and metrics server listens (all interfaces unless configured)."""
    return str(getattr(settings, "metrics_host", "") or "0.0.0.0")


def check_port_free(host: str, port: int, setting: str) -> None:
    """Refuse when ``host:port`` cannot be bound now (in use, or not an address here).

    A bind test, closed at once: the server binds for real after the models load, so a
    port taken in between is still reported, only later. ``setting`` names what to change.
    """
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Refusal(f"{setting}: cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # Like the real servers: SO_REUSEADDR, so a port in TIME_WAIT is not called busy,
        # while one another process listens on still is (Linux refuses that bind).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise Refusal(f"{setting}: port {port} on {host} is already in use; stop "
                              "what holds it or choose another port") from None
            raise Refusal(f"{setting}: cannot listen on {host}:{port}: "
                          f"{exc.strerror or exc}") from None
