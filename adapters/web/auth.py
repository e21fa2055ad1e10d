"""Who may use the web page and the JSON API, and where they may listen.

* ``VOICEMOOD_WEB_USERS`` set: logins from ``user:password`` pairs (comma separated) or
  from an htpasswd file (bcrypt entries, as ``htpasswd -B`` writes them). Each login is a
  history user of platform ``web``; the page may listen on any address.
* Unset: one local user (:data:`LOCAL_USER`) and no login, so the page must listen on a
  loopback address: anyone who can reach it reads that history.
* ``VOICEMOOD_API_TOKEN`` set: ``/api/...`` also needs ``Authorization: Bearer <token>``,
  or a web login as HTTP Basic credentials.

Passwords are compared in constant time; bcrypt checks run off the event loop. A name
that is not a login costs the same check as one that is (against a dummy hash of the same
bcrypt cost), so the answer's timing does not tell which names exist. Failed logins are
counted per client address and name (:class:`LoginGuard`): after :data:`LOGIN_FAILURES`
within :data:`LOGIN_WINDOW_S` seconds that pair is refused, without a password check, until
the oldest failure ages out. One pair's attempts take turns, so parallel guesses cannot
all be checked before the first failures are counted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import ipaddress
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
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
#: Failed logins allowed per (client address, name) within :data:`LOGIN_WINDOW_S`.
LOGIN_FAILURES = 5
#: Seconds a failed login is remembered for.
LOGIN_WINDOW_S = 60.0
#: Pairs remembered at most: beyond it the stalest are dropped (memory stays bounded under
#: a flood of names or addresses).
_GUARD_KEYS = 10_000


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


class TooManyLogins(Exception):
    """Too many failed logins for this address and name; ``wait_s`` until the next try."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = max(1, int(wait_s + 0.999))
        super().__init__(f"Too many failed logins; wait {self.wait_s} s and try again.")


class LoginGuard:
    """Counts failed logins per (client address, name) and refuses a pair over the limit.

    Keyed by the pair, not the name alone: a stranger guessing alice's password from
    another address does not lock alice out. Behind a reverse proxy every client has the
    proxy's address, so the pair is in effect the name. The attempts of one pair take
    turns (:meth:`turn`), so a parallel burst of guesses gets at most ``failures``
    password checks, while parallel right passwords all pass.
    """

    def __init__(self, failures: int = LOGIN_FAILURES, window_s: float = LOGIN_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, str], deque[float]] = {}
        #: pair -> (its lock, attempts holding or awaiting it)
        self._turns: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, address: str, user: str) -> AsyncIterator[None]:
        """One attempt of this pair at a time (event loop only)."""
        key = (address, user)
        lock, users = self._turns.get(key, (asyncio.Lock(), 0))
        self._turns[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[key]
            if users == 1:
                del self._turns[key]
            else:
                self._turns[key] = (lock, users - 1)

    def check(self, address: str, user: str) -> None:
        """:class:`TooManyLogins` while the pair has ``failures`` failures in the window."""
        now = self._clock()
        seen = self._seen.get((address, user))
        if seen is None:
            return
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if not seen:
            del self._seen[(address, user)]
        elif len(seen) >= self.failures:
            raise TooManyLogins(seen[0] + self.window_s - now)

    def failed(self, address: str, user: str) -> None:
        """A wrong password (or unknown name) for this pair."""
        key = (address, user)
        seen = self._seen.pop(key, deque())
        seen.append(self._clock())
        self._seen[key] = seen  # re-inserted: the dict's order is least recently used
        while len(self._seen) > _GUARD_KEYS:
            del self._seen[next(iter(self._seen))]

    def succeeded(self, address: str, user: str) -> None:
        """A correct password: forget this pair's failures."""
        self._seen.pop((address, user), None)


@dataclass(frozen=True)
class Access:
    """Logins (user -> bcrypt hash or password) and the API token, checked per request."""

    #: user -> ("bcrypt", hash) or ("plain", password)
    logins: dict[str, tuple[str, str]] = field(default_factory=dict)
    api_token: str | None = None
    guard: LoginGuard = field(default_factory=LoginGuard, compare=False, repr=False)
    #: What an unknown name is checked against: a bcrypt hash of the logins' own cost
    #: ("" when every login is a plain password).
    dummy_hash: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.dummy_hash:
            object.__setattr__(self, "dummy_hash", _dummy_hash(self.logins))

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
        if API_USER in logins:
            # The token's calls are stored as this user: a login of that name would read
            # and add to the token's history (and the token holder to the login's).
            raise WebAccessError(
                f"VOICEMOOD_WEB_USERS: the login name {API_USER!r} is reserved for the "
                "history of calls made with VOICEMOOD_API_TOKEN; choose another name")
        if not logins and not is_loopback(host):
            raise WebAccessError(
                f"VOICEMOOD_WEB_HOST={host} is not a loopback address, and without "
                "VOICEMOOD_WEB_USERS the page has no login: anyone who reaches it would read "
                "the history. Set VOICEMOOD_WEB_USERS (user:password pairs or an htpasswd "
                "file) or listen on 127.0.0.1."
            )
        return cls(logins=logins, api_token=token or None)

    def check_password(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s (blocking: bcrypt takes milliseconds).

        A name that is not a login runs the same check against a dummy secret: returning
        at once (2-6 ms against 260-590 ms) told which names exist.
        """
        entry = self.logins.get(user)
        known = entry is not None
        if entry is None:
            entry = ("bcrypt", self.dummy_hash) if self.dummy_hash else ("plain", "\0" * 16)
        kind, secret = entry
        if kind == "plain":
            return hmac.compare_digest(password.encode(), secret.encode()) and known
        try:
            return bcrypt.checkpw(password.encode(), secret.encode()) and known
        except ValueError:  # a password over bcrypt's 72 bytes, or a damaged hash
            return False

    async def check_password_async(self, user: str, password: str) -> bool:
        """:meth:`check_password` in a worker thread."""
        return await asyncio.to_thread(self.check_password, user, password)

    async def login(self, address: str, user: str, password: str) -> bool:
        """:meth:`check_password_async` behind the :class:`LoginGuard` of ``address``.

        Raises :class:`TooManyLogins` (no password check made) while the pair is over the
        limit of failed attempts.
        """
        async with self.guard.turn(address, user):
            self.guard.check(address, user)
            ok = await self.check_password_async(user, password)
            (self.guard.succeeded if ok else self.guard.failed)(address, user)
        return ok

    def check_token(self, token: str) -> bool:
        """Whether ``token`` is the configured API token."""
        return self.api_token is not None and hmac.compare_digest(
            token.encode(), self.api_token.encode())


def _dummy_hash(logins: dict[str, tuple[str, str]]) -> str:
    """A bcrypt hash of a random password at the highest cost among the logins' hashes."""
    costs = [int(m.group(1)) for kind, secret in logins.values() if kind == "bcrypt"
             if (m := re.match(r"\$2[aby]\$(\d\d)\$", secret))]
    if not costs:
        return ""
    return bcrypt.hashpw(base64.b64encode(bcrypt.gensalt()), bcrypt.gensalt(max(costs))).decode()


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
