"""Logins of the page and the API: no timing tells which names exist, and guessing is
limited per client address and name (issue #18, item 9). A real server on a free loopback
port (tests/web_fixtures.py), real HTTP, real bcrypt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from adapters.web.app import RunningWeb
from adapters.web.auth import Access, LoginGuard, TooManyLogins, WebAccessError
from inference.engine import InferenceEngine
from tests.conftest import make_settings
from tests.test_cli import run_cli
from tests.web_fixtures import web_server

ALICE = ("alice", "wonderland")
BOB = ("bob", "builder")
#: `htpasswd -B` style entry for alice's password, bcrypt cost 05.
ALICE_BCRYPT = "alice:$2y$05$obD6qlVptCPvBpKYfX5ZteLvtArDZNEFdlHTBk0V22Vt0LSL1PPA2"


@pytest.fixture
async def site(engine: InferenceEngine, tmp_path: Path) -> AsyncIterator[RunningWeb]:
    async with web_server(engine, tmp_path, web_users="alice:wonderland,bob:builder") \
            as (web, _):
        yield web


def test_an_unknown_name_costs_a_bcrypt_check_like_a_known_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = tmp_path / "users.htpasswd"
    users.write_text(ALICE_BCRYPT + "\n")
    access = Access.from_settings(make_settings(tmp_path, web_users=str(users)))
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    assert access.check_password("alice", "wonderland")
    assert not access.check_password("mallory", "wonderland")
    assert not access.check_password("mallory", "")
    assert len(checked) == 3
    # The dummy has the logins' own cost, so it takes as long as alice's check.
    assert [h[:7] for h in checked[1:]] == [b"$2b$05$", b"$2b$05$"]


def test_the_guard_refuses_a_pair_over_the_limit_until_its_oldest_failure_ages() -> None:
    now = [1000.0]
    guard = LoginGuard(failures=5, window_s=60.0, clock=lambda: now[0])
    for _ in range(5):
        guard.check("10.0.0.1", "alice")
        guard.failed("10.0.0.1", "alice")
        now[0] += 1.0
    with pytest.raises(TooManyLogins, match=r"^Too many failed logins; wait 55 s and try "
                                            r"again\.$"):
        guard.check("10.0.0.1", "alice")
    guard.check("10.0.0.2", "alice")  # another address is not locked out
    guard.check("10.0.0.1", "bob")  # nor another name
    now[0] = 1060.0  # the first failure has aged out: one more try
    guard.check("10.0.0.1", "alice")
    guard.succeeded("10.0.0.1", "alice")  # a right password clears the count
    for _ in range(5):
        guard.check("10.0.0.1", "alice")
        guard.failed("10.0.0.1", "alice")


async def test_a_burst_of_guesses_gets_five_checks_and_no_one_else_waits(
        site: RunningWeb) -> None:
    async with httpx.AsyncClient(base_url=site.url, timeout=120) as c:
        guesses = await asyncio.gather(*(c.post("/login", data={"username": "alice",
                                                              "password": f"guess{i}"})
                                         for i in range(48)))
        statuses = sorted(r.status_code for r in guesses)
        assert statuses == [400] * 5 + [429] * 43
        refused = next(r for r in guesses if r.status_code == 429)
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 60
        assert refused.json() == {
            "detail": f"Too many failed logins; wait {wait} s and try again."}
        # Bob's login is not queued behind 48 bcrypt checks, nor refused.
        bob = await c.post("/login", data={"username": BOB[0], "password": BOB[1]})
        assert bob.status_code == 200 and bob.json() == {"success": True}
        # Alice herself, from the guessing address, waits out the window.
        alice = await c.post("/login", data={"username": ALICE[0], "password": ALICE[1]})
        assert alice.status_code == 429
        # The API's HTTP Basic counts against the same limit.
        api = await c.get("/api/history", auth=ALICE)
        assert api.status_code == 429
        assert api.json()["error"]["code"] == "too_many_logins"
        assert api.json()["error"]["message"].startswith("Too many failed logins; wait ")
        assert int(api.headers["Retry-After"]) >= 1


async def test_parallel_right_passwords_all_pass(site: RunningWeb) -> None:
    # Attempts of one pair take turns; only failures count, so a client making many
    # calls at once with the right password is never refused.
    async with httpx.AsyncClient(base_url=site.url, timeout=120) as c:
        replies = await asyncio.gather(*(c.get("/api/history", auth=ALICE)
                                         for _ in range(12)))
        assert [r.status_code for r in replies] == [200] * 12
        logins = await asyncio.gather(*(c.post("/login", data={"username": ALICE[0],
                                                               "password": ALICE[1]})
                                        for _ in range(8)))
        assert [r.status_code for r in logins] == [200] * 8


async def test_api_basic_guesses_are_limited_and_a_success_clears_them(
        site: RunningWeb) -> None:
    async with httpx.AsyncClient(base_url=site.url, timeout=120) as c:
        for _ in range(4):
            assert (await c.get("/api/history", auth=("bob", "wrong"))).status_code == 401
        assert (await c.get("/api/history", auth=BOB)).json()["user"] == "bob"
        for _ in range(5):  # the count started again at zero
            assert (await c.get("/api/history", auth=("bob", "wrong"))).status_code == 401
        locked = await c.get("/api/history", auth=BOB)
        assert locked.status_code == 429, locked.text


@pytest.mark.parametrize("users", ["api:s3cr3t-pw", "alice:wonderland,api:0th3r-pw"])
def test_a_login_named_api_is_refused_at_start(users: str, tmp_path: Path) -> None:
    # `api` is whose history the API token's calls go to: a login of that name shared it.
    out = run_cli(["web"], tmp_path, timeout=120, VOICEMOOD_WEB_USERS=users)
    assert out.returncode == 2
    assert out.stderr == ("voicemood web: VOICEMOOD_WEB_USERS: the login name 'api' is "
                          "reserved for the history of calls made with VOICEMOOD_API_TOKEN; "
                          "choose another name\n")
    assert "-pw" not in out.stdout + out.stderr  # no password echoed


def test_an_htpasswd_login_named_api_is_refused_too(tmp_path: Path) -> None:
    users = tmp_path / "users.htpasswd"
    users.write_text(ALICE_BCRYPT.replace("alice:", "api:") + "\n")
    with pytest.raises(WebAccessError, match="the login name 'api' is reserved"):
        Access.from_settings(make_settings(tmp_path, web_users=str(users)))
