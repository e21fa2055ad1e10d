"""Who may use the web page and the JSON API, and where they may listen.

* ``VOICEMOOD_WEB_USERS`` set: logins from ``user:password`` pairs (comma separated) or
  from an htpasswd file (bcrypt entries, as ``htpasswd -B`` writes them). Each login is a
  history user of platform ``web``; the page may listen on any address.
* Unset: one local user (:data:`LOCAL_USER`) and no login, so the page must listen on a
  loopback address: anyone who can reach it reads that history.
* ``VOICEMOOD_API_TOKEN`` set: ``/api/...`` also needs ``Authorization: Bearer <token>``,
  or a web login as HTTP Basic credentials.

Passwords are compared in constant time; bcrypt checks run off the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import bcrypt

if TYPE_CHECKING:
    from bot.ops.settings import Settings

#: History user of the page when no logins are configured.
LOCAL_USER = "local"
#: History user of calls made with the API token while logins are configured.
API_USER = "api"
_BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")


class WebAccessError(ValueError):
    """The web access settings are unusable; the message is meant for the operator."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


@dataclass(frozen=True)
class Access:
    """Logins (user -> bcrypt hash or password) and the API token, checked per request."""

    #: user -> ("bcrypt", hash) or ("plain", password)
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)
    api_token: str | None = None

    @property
    def open(self) -> bool:
        """True when there are no logins: one local user, loopback only."""
        return not self.logins

    @classmethod
    def from_settings(cls, settings: Settings, host: str | None = None) -> Access:
        """Read the logins and token; refuse a non-loopback ``host`` without logins.

        Raises :class:`WebAccessError` with a message fit to print for the operator.
        """
        raw = settings.web_users.get_secret_value().strip() if settings.web_users else ""
        logins = parse_users(raw) if raw else {}
        token = settings.api_token.get_secret_value().strip() if settings.api_token else ""
        host = settings.web_host if host is None else host
        if not logins and not is_loopback(host):
            raise WebAccessError(
                f"VOICEMOOD_WEB_HOST={host} is not a loopback address, and without "
                "VOICEMOOD_WEB_USERS the page has no login: anyone who reaches it would read "
                "the history. Set VOICEMOOD_WEB_USERS (user:password pairs or an htpasswd "
                "file) or listen on 127.0.0.1."
            )
        return cls(logins=logins, api_token=token or None)

    def check_password(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s (blocking: bcrypt takes milliseconds)."""
        entry = self.logins.get(user)
        if entry is None:
            return False
        kind, secret = entry
        if kind == "plain":
            return hmac.compare_digest(password.encode(), secret.encode())
        try:
            return bcrypt.checkpw(password.encode(), secret.encode())
        except ValueError:  # a password over bcrypt's 72 bytes, or a damaged hash
            return False

    async def check_password_async(self, user: str, password: str) -> bool:
        """:meth:`check_password` in a worker thread."""
        return await asyncio.to_thread(self.check_password, user, password)

    def check_token(self, token: str) -> bool:
        """Whether ``token`` is the configured API token."""
        return self.api_token is not None and hmac.compare_digest(
            token.encode(), self.api_token.encode())


def parse_users(raw: str) -> dict[str, tuple[str, str]]:
    """``VOICEMOOD_WEB_USERS``: a path to an htpasswd file, or ``user:password`` pairs."""
    path = Path(raw).expanduser()
    if path.is_file():
        return _read_htpasswd(path)
    if ":" not in raw:
        raise WebAccessError(f"VOICEMOOD_WEB_USERS: no such file {raw!r}, and not "
                             "user:password pairs")
    logins: dict[str, tuple[str, str]] = {}
    for pair in raw.split(","):
        user, sep, password = pair.strip().partition(":")
        if not sep or not user.strip() or not password:
            raise WebAccessError("VOICEMOOD_WEB_USERS: each entry must be user:password "
                                 "(comma separated); an empty user or password is not allowed")
        _refuse_duplicate(logins, user.strip(), "VOICEMOOD_WEB_USERS")
        logins[user.strip()] = ("plain", password)
    return logins


def _read_htpasswd(path: Path) -> dict[str, tuple[str, str]]:
    logins: dict[str, tuple[str, str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise WebAccessError(f"VOICEMOOD_WEB_USERS: cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, _, hashed = line.partition(":")
        # Only bcrypt is safe and checkable here; MD5-crypt ($apr1$) and SHA-1 entries are not.
        if not user or not hashed.startswith(_BCRYPT_PREFIXES):
            raise WebAccessError(
                f"VOICEMOOD_WEB_USERS: {path} line {number}: only bcrypt entries are "
                "supported (create them with `htpasswd -B`)")
        _refuse_duplicate(logins, user, f"VOICEMOOD_WEB_USERS: {path} line {number}")
        logins[user] = ("bcrypt", hashed)
    if not logins:
        raise WebAccessError(f"VOICEMOOD_WEB_USERS: {path} holds no users")
    return logins


def _refuse_duplicate(logins: dict[str, tuple[str, str]], user: str, where: str) -> None:
    # A second entry used to replace the first silently: one of the two passwords the
    # operator handed out stopped working, with nothing said at start.
    if user in logins:
        raise WebAccessError(f"{where}: user {user!r} is listed twice; give each login "
                             "once (one password per user)")


def basic_credentials(header: str) -> tuple[str, str] | None:
    """User and password of an ``Authorization: Basic ...`` header, else None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
