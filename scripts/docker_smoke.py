#!/usr/bin/env python3
"""``make docker-smoke``: build the image, start compose.yaml's stack for real, and prove that
a self-hoster's ``docker compose up`` answers a voice note.

Why: the Dockerfile and compose.yaml are what most self-hosters run, and nothing else
exercises them (``make test`` must not need Docker). This script is slow (minutes) and needs
a Docker daemon, docker-compose and ``../shared/data``, so it is its own make target.

What it does, printing one line per check and stopping at the first failure (exit 1):

1. builds ``voicemood:latest`` and a Redis image with scripts/docker_build.sh (which makes
   the debootstrap base ``local/debian:bookworm`` first if it is missing); ``--no-build``
   skips this and uses the images already there;
2. starts a fake Telegram Bot API (tests/fake_telegram.py) on 127.0.0.1 in a thread, and the
   stack (compose.yaml + compose.smoke.yaml, project ``voicemood-smoke``, profile
   ``monitoring``) on the host network with free ports, a throw-away token and logins;
3. checks Docker's health status of every container, ``/healthz`` of serve, both workers
   and the web page, Flower's login, and that Redis keeps nothing on disk;
4. sends a voice note from ../shared/data, encoded to OGG/Opus as Telegram does (ffmpeg in
   the image), and checks the reply's tag and transcript;
5. sends a longer note, ``docker kill``s the worker that took it mid-note, and checks that
   the other worker answers it, exactly once;
6. ``docker-compose down`` (volumes kept), up again, and checks ``/history`` still lists the
   notes.

Whatever happens, it then removes everything it started: the stack and its volume
(``down -v``), the fake server, temporary files. Every wait is bounded.

    make docker-smoke                  # or: .venv/bin/python scripts/docker_smoke.py
    .venv/bin/python scripts/docker_smoke.py --no-build   # reuse the images
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import fake_telegram as fk  # noqa: E402  (needs ROOT on the path)

PROJECT = "voicemood-smoke"
IMAGE = os.environ.get("VOICEMOOD_IMAGE", "voicemood:latest")
REDIS_IMAGE = os.environ.get("VOICEMOOD_REDIS_IMAGE", "voicemood-redis:local")
SHARED = Path(os.environ.get("VOICEMOOD_SHARED_DATA", ROOT.parent / "shared" / "data"))
#: Models load on a loaded 2-core machine in well under this; a stack that is not healthy by
#: then is broken.
HEALTHY_WITHIN_S = 420
#: The first note waits for nothing but the analysis itself.
REPLY_WITHIN_S = 240
#: A killed worker's note comes back after the visibility timeout (compose.smoke.yaml: 100 s),
#: plus Celery's 10 s restore sweep, plus the analysis (measured: 189 s in all on a loaded
#: 2-core machine).
REDELIVERY_WITHIN_S = 420
COMPOSE_TIMEOUT_S = 300

SERVICES = ("redis", "serve", "worker", "worker-2", "flower")
TAGS = ("positive", "negative", "neutral", "excited")


class SmokeFailure(Exception):
    """A check failed; the message says which and why."""


def say(status: str, what: str) -> None:
    """One line of the report: ``ok``, ``FAIL`` or ``..`` (a step starting)."""
    print(f"  {status:4} {what}", flush=True)


def run(cmd: list[str], *, timeout: float = 120, check: bool = True, env: dict | None = None,
        input_bytes: bytes | None = None, quiet: bool = True) -> subprocess.CompletedProcess:
    """A command with a hard timeout; its output captured (shown when it fails)."""
    try:
        proc = subprocess.run(cmd, input=input_bytes, capture_output=quiet, timeout=timeout,
                              env=env, check=False)
    except subprocess.TimeoutExpired:
        raise SmokeFailure(f"{' '.join(cmd[:4])}... did not finish in {timeout:.0f} s") from None
    if check and proc.returncode != 0:
        tail = (proc.stderr or b"").decode(errors="replace")[-2000:] if quiet else ""
        raise SmokeFailure(f"{' '.join(cmd[:6])} exited {proc.returncode}\n{tail}")
    return proc


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, predicate: Callable[[], Any], within: float,
               every: float = 1.0) -> Any:
    """Poll ``predicate`` until truthy (returned) or ``within`` seconds pass (failure)."""
    deadline = time.monotonic() + within
    last_error = ""
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # a refused connection while a service starts, etc.
            last_error = f" (last error: {exc})"
        if time.monotonic() > deadline:
            raise SmokeFailure(f"{what}: not within {within:.0f} s{last_error}")
        time.sleep(every)


def http_get(url: str, auth: str | None = None, timeout: float = 5) -> tuple[int, str]:
    """Status and body of a GET (an HTTP error status is returned, not raised)."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(4000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4000).decode(errors="replace")


# -- the fake Telegram Bot API, in a thread of its own ------------------------------------------

class FakeTelegramThread:
    """tests/fake_telegram.FakeTelegram on its own event loop, so that the blocking docker
    commands of this script never stall the bot's long polling."""

    def __init__(self, token: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake = fk.FakeTelegram(token)
        self._call(self.fake.start())

    def _call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        """Base URL; the bot appends ``/bot<token>`` and ``/file/bot<token>``."""
        return f"http://127.0.0.1:{self.fake.port}"

    def add_file(self, data: bytes) -> str:
        """Register a voice file; its file_id."""
        return self.fake.add_file(data)  # a dict entry: safe from this thread

    def push(self, update: dict) -> None:
        """Queue an update for the bot's getUpdates."""

        async def push() -> None:
            self.fake.push(update)

        self._call(push())

    def calls(self) -> list[fk.Call]:
        """A copy of every call the bot made so far."""
        return list(self.fake.calls)

    def stop(self) -> None:
        """Stop the server and its loop."""
        try:
            self._call(self.fake.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def texts_to(fake: FakeTelegramThread, chat_id: int) -> list[str]:
    """Every message text the bot sent (or edited into) chat ``chat_id``, in order."""
    return [str(c.params.get("text", "")) for c in fake.calls()
            if c.method in ("sendMessage", "editMessageText")
            and c.params.get("chat_id") == chat_id and not c.params.get("_failed")]


def analyses_to(fake: FakeTelegramThread, chat_id: int) -> list[str]:
    """The analysis replies in ``chat_id`` (they carry "Transcript (N s, lang):")."""
    return [t for t in texts_to(fake, chat_id) if "Transcript (" in t]


# -- the stack ------------------------------------------------------------------------------------

class Stack:
    """compose.yaml + compose.smoke.yaml as project ``voicemood-smoke``."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.file = workdir / "compose.merged.yaml"

    def compose(self, *args: str, timeout: float = COMPOSE_TIMEOUT_S, check: bool = True,
                file: Path | None = None) -> subprocess.CompletedProcess:
        files = ["-f", str(ROOT / "compose.yaml"), "-f", str(ROOT / "compose.smoke.yaml")] \
            if file is None else ["-f", str(file)]
        return run(["docker-compose", "--no-ansi", "-p", PROJECT, *files,
                    "--profile", "monitoring", *args],
                   timeout=timeout, check=check, env=self.env)

    def write_config(self) -> None:
        """Merge the two files with docker-compose itself, then drop ``ports:``.

        docker-compose v1 refuses port mappings on the host network (and on it every port is
        on the host's 127.0.0.1 already); an override cannot remove list entries, so the merged
        configuration is written out without them. Everything else is compose.yaml's.
        """
        merged = yaml.safe_load(self.compose("config", file=None).stdout)
        for service in merged["services"].values():
            service.pop("ports", None)
        self.file.write_text(yaml.safe_dump(merged, sort_keys=False))

    def up(self) -> None:
        self.compose("up", "-d", "--no-build", file=self.file)

    def down(self, volumes: bool = False) -> None:
        args = ["down", "--remove-orphans", "--timeout", "20"]
        if volumes:
            args.append("-v")
        self.compose(*args, file=self.file if self.file.exists() else None)

    def container(self, service: str) -> str:
        """The id of ``service``'s (first) container."""
        out = self.compose("ps", "-q", service, file=self.file, timeout=60).stdout.decode()
        ids = out.split()
        if not ids:
            raise SmokeFailure(f"no container for {service}")
        return ids[0]

    def logs(self, container: str) -> str:
        proc = run(["docker", "logs", container], timeout=30, check=False)
        return (proc.stdout or b"").decode(errors="replace") + \
            (proc.stderr or b"").decode(errors="replace")

    def health(self, container: str) -> str:
        proc = run(["docker", "inspect", "-f", "{{.State.Status}} {{if .State.Health}}"
                    "{{.State.Health.Status}}{{end}}", container], timeout=30, check=False)
        return (proc.stdout or b"").decode().strip()


def received_ids(log_text: str) -> list[str]:
    """Task ids a worker log says it received (Celery logs each at INFO)."""
    return re.findall(r"voicemood\.analyze\[([0-9a-f-]+)\] received", log_text)


# -- the checks -----------------------------------------------------------------------------------

def preconditions() -> None:
    for tool in ("docker", "docker-compose"):
        if shutil.which(tool) is None:
            raise SmokeFailure(f"{tool} not found: apt-get install docker.io docker-compose "
                               "(see docs/deploy.md)")
    run(["docker", "info"], timeout=30)
    if not (SHARED / "en_asr" / "manifest.csv").exists():
        raise SmokeFailure(f"no recordings in {SHARED} (set VOICEMOOD_SHARED_DATA)")
    say("ok", "docker daemon, docker-compose and the recordings are there")


def build() -> None:
    say("..", "building the images (scripts/docker_build.sh; minutes the first time)")
    start = time.monotonic()
    proc = run(["sh", str(ROOT / "scripts" / "docker_build.sh")], timeout=3600, quiet=True)
    summary = [line for line in proc.stdout.decode(errors="replace").splitlines()
               if line.startswith(("built ", "base image"))]
    for line in summary:
        say("ok", line)
    say("ok", f"build step took {time.monotonic() - start:.0f} s")


def clips(n: int) -> list[tuple[Path, str, float]]:
    """The first ``n`` English clips with their transcript and duration."""
    with (SHARED / "en_asr" / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [(SHARED / "en_asr" / r["file"], r["transcript"], float(r["duration_s"]))
            for r in rows[:n]]


def to_voice_note(files: list[Path], workdir: Path) -> bytes:
    """The clips joined and encoded as Telegram voice notes are: OGG/Opus, mono, 48 kHz.

    ffmpeg runs in the image itself (no network), so the host needs no ffmpeg.
    """
    inputs = workdir / "in"
    inputs.mkdir(exist_ok=True)
    args: list[str] = []
    chains = []
    for i, f in enumerate(files):
        shutil.copyfile(f, inputs / f"{i}{f.suffix}")
        args += ["-i", f"/in/{i}{f.suffix}"]
        chains.append(f"[{i}:a]aresample=48000,aformat=channel_layouts=mono[a{i}]")
    joined = "".join(f"[a{i}]" for i in range(len(files)))
    graph = ";".join(chains) + f";{joined}concat=n={len(files)}:v=0:a=1[out]"
    os.chmod(inputs, 0o755)
    proc = run(["docker", "run", "--rm", "--network", "none", "-v", f"{inputs}:/in:ro",
                "--entrypoint", "ffmpeg", IMAGE, "-hide_banner", "-loglevel", "error",
                *args, "-filter_complex", graph, "-map", "[out]", "-c:a", "libopus",
                "-b:a", "32k", "-application", "voip", "-f", "ogg", "pipe:1"], timeout=120)
    shutil.rmtree(inputs)
    if len(proc.stdout) < 1000:
        raise SmokeFailure("ffmpeg in the image made no OGG/Opus note")
    return proc.stdout


def send_voice(fake: FakeTelegramThread, user: dict, data: bytes, duration: float) -> dict:
    file_id = fake.add_file(data)
    update = fk.message(user, **fk.voice(file_id, len(data), int(round(duration))))
    fake.push(update)
    return update["message"]


def send_command(fake: FakeTelegramThread, user: dict, text: str) -> None:
    fake.push(fk.command(user, text))


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def check_health(stack: Stack, ports: dict[str, int], flower_login: str) -> None:
    ids = {service: stack.container(service) for service in SERVICES}

    def all_healthy() -> bool:
        states = {s: stack.health(c) for s, c in ids.items()}
        bad = {s: st for s, st in states.items() if st.split()[0] != "running"}
        if bad:
            raise SmokeFailure(f"containers not running: {bad}")
        return all(st.endswith(" healthy") for st in states.values())

    wait_until("every container healthy (docker's HEALTHCHECK)", all_healthy,
               HEALTHY_WITHIN_S, every=3)
    say("ok", "Docker health: " + ", ".join(f"{s} healthy" for s in SERVICES))
    for name, port in (("serve", ports["serve"]), ("worker", ports["worker1"]),
                       ("worker-2", ports["worker2"]), ("web page", ports["web"])):
        status, body = http_get(f"http://127.0.0.1:{port}/healthz")
        if status != 200:
            raise SmokeFailure(f"/healthz of {name}: {status} {body.strip()[:200]}")
        say("ok", f"/healthz of {name} (port {port}): 200 {body.strip()[:40]}")
    base = f"http://127.0.0.1:{ports['flower']}"
    status, _ = http_get(base + "/healthcheck")
    anonymous, _ = http_get(base + "/")
    logged_in, _ = http_get(base + "/", auth=flower_login)
    if (status, anonymous, logged_in) != (200, 401, 200):
        raise SmokeFailure(f"Flower: /healthcheck {status}, / without login {anonymous}, "
                           f"with login {logged_in} (want 200, 401, 200)")
    say("ok", "Flower: /healthcheck 200, its pages 401 without a login, 200 with one")
    redis = ids["redis"]
    config = {}
    for key in ("appendonly", "save"):
        out = run(["docker", "exec", redis, "redis-cli", "-p", str(ports["redis"]),
                   "config", "get", key], timeout=30).stdout.decode().splitlines()
        config[key] = out[1] if len(out) > 1 else ""
    if config != {"appendonly": "no", "save": ""}:
        raise SmokeFailure(f"Redis persists notes: {config}")
    say("ok", "Redis keeps nothing on disk (appendonly no, save \"\")")


def check_first_note(fake: FakeTelegramThread, workdir: Path, alice: dict) -> None:
    [(path, expected, duration)] = clips(1)
    note = to_voice_note([path], workdir)
    say("ok", f"voice note: {path.name} ({duration:.1f} s) as OGG/Opus, {len(note)} bytes")
    send_voice(fake, alice, note, duration)
    [reply] = wait_until("the reply to the voice note",
                         lambda: analyses_to(fake, alice["id"]), REPLY_WITHIN_S)[:1]
    first_line = reply.splitlines()[0]
    tag = next((t for t in TAGS if f"/ {t} ·" in first_line), None)
    if tag is None:
        raise SmokeFailure(f"no mood tag in the reply: {reply!r}")
    transcript = reply.split("):", 1)[-1].strip()
    overlap = len(words(expected) & words(transcript)) / max(1, len(words(expected)))
    if overlap < 0.6:
        raise SmokeFailure(f"transcript {transcript!r} is far from {expected!r}")
    say("ok", f"reply: tag {tag!r} ({re.sub('<[^>]+>', '', first_line)}), transcript "
              f"{transcript[:60]!r}… ({overlap:.0%} of the words)")


def check_worker_killed(stack: Stack, fake: FakeTelegramThread, workdir: Path,
                        bob: dict) -> None:
    picked = clips(6)
    duration = sum(d for _, _, d in picked)
    note = to_voice_note([p for p, _, _ in picked], workdir)
    workers = {name: stack.container(name) for name in ("worker", "worker-2")}
    before = {name: set(received_ids(stack.logs(c))) for name, c in workers.items()}
    send_voice(fake, bob, note, duration)

    def taken() -> tuple[str, str] | None:
        for name, container in workers.items():
            new = set(received_ids(stack.logs(container))) - before[name]
            if new:
                return name, new.pop()
        return None

    victim, task_id = wait_until("a worker taking the long note", taken, 90, every=0.2)
    time.sleep(1.0)  # into the analysis, well before its end (a 40 s note takes longer)
    if analyses_to(fake, bob["id"]):
        raise SmokeFailure("the long note was answered before the kill: make it longer")
    run(["docker", "kill", workers[victim]], timeout=30)
    killed_at = time.monotonic()
    if analyses_to(fake, bob["id"]):
        raise SmokeFailure("the long note was answered before the kill landed")
    survivor = "worker-2" if victim == "worker" else "worker"
    say("ok", f"{duration:.0f} s note taken by {victim} (task {task_id[:8]}), which was "
              f"`docker kill`ed mid-note")
    wait_until("the killed worker's note answered",
               lambda: analyses_to(fake, bob["id"]), REDELIVERY_WITHIN_S, every=1)
    waited = time.monotonic() - killed_at
    time.sleep(5)  # nothing else may arrive for it
    replies = analyses_to(fake, bob["id"])
    taken_by = {name: received_ids(stack.logs(c)).count(task_id)
                for name, c in workers.items()}
    if len(replies) != 1:
        raise SmokeFailure(f"{len(replies)} answers to one note")
    if taken_by[survivor] < 1:
        raise SmokeFailure(f"{survivor} never took the note: {taken_by}")
    say("ok", f"{survivor} answered it {waited:.0f} s after the kill, exactly once "
              f"(received by {taken_by})")
    send_command(fake, bob, "/history")
    history = wait_until("/history after the kill",
                         lambda: [t for t in texts_to(fake, bob["id"]) if "• " in t], 60)
    if history[-1].count("• ") != 1:
        raise SmokeFailure(f"the history holds the note {history[-1].count('• ')} times")
    say("ok", "the history holds that note once")


def history_lines(fake: FakeTelegramThread, user: dict, within: float) -> list[str]:
    seen = len(texts_to(fake, user["id"]))
    send_command(fake, user, "/history")
    text = wait_until(f"/history of {user['first_name']}",
                      lambda: [t for t in texts_to(fake, user["id"])[seen:] if "• " in t],
                      within)[-1]
    return [line for line in text.splitlines() if line.startswith("• ")]


def check_history_survives(stack: Stack, fake: FakeTelegramThread, alice: dict) -> None:
    before = history_lines(fake, alice, 60)
    stack.down()
    volumes = run(["docker", "volume", "ls", "-q", "--filter",
                   f"label=com.docker.compose.project={PROJECT}"], timeout=30).stdout.decode()
    if "history" not in volumes:
        raise SmokeFailure(f"the history volume is gone after `down`: {volumes!r}")
    say("ok", f"`docker-compose down` kept the volume {volumes.split()[0]}")
    stack.up()
    check_health_quiet(stack)
    after = history_lines(fake, alice, 120)
    if after != before or not after:
        raise SmokeFailure(f"history before {before} and after the restart {after}")
    say("ok", f"after `up` again, /history still lists the {len(after)} note(s)")


def check_health_quiet(stack: Stack) -> None:
    ids = {service: stack.container(service) for service in SERVICES}
    wait_until("every container healthy again",
               lambda: all(stack.health(c).endswith(" healthy") for c in ids.values()),
               HEALTHY_WITHIN_S, every=3)
    say("ok", "stack up again, every container healthy")


def dump_logs(stack: Stack) -> None:
    """The last lines of each container's log, to see why something failed."""
    for service in SERVICES:
        try:
            container = stack.container(service)
        except SmokeFailure:
            continue
        lines = stack.logs(container).splitlines()[-25:]
        print(f"---- {service} ({container[:12]}): last {len(lines)} log lines", flush=True)
        for line in lines:
            print(f"     {line}", flush=True)


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="use the images already built")
    parser.add_argument("--keep", action="store_true",
                        help="leave the stack running (for debugging; remove it with "
                             f"docker-compose -p {PROJECT} down -v)")
    args = parser.parse_args()

    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the clean-up below runs.
    signal.signal(signal.SIGTERM, _interrupted)
    print(f"voicemood docker smoke test ({time.strftime('%Y-%m-%d %H:%M:%S')})", flush=True)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="voicemood-smoke-"))
    fake: FakeTelegramThread | None = None
    stack: Stack | None = None
    ok = False
    try:
        preconditions()
        if not args.no_build:
            build()
        for image in (IMAGE, REDIS_IMAGE):
            run(["docker", "image", "inspect", image], timeout=30)
        token = f"{secrets.randbelow(10**9)}:SMOKE-{secrets.token_urlsafe(24)}"
        fake = FakeTelegramThread(token)
        ports = {name: free_port() for name in
                 ("redis", "serve", "worker1", "worker2", "web", "flower")}
        web_login = f"smoke:{secrets.token_urlsafe(12)}"
        flower_login = f"admin:{secrets.token_urlsafe(12)}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
        env.update({
            "VOICEMOOD_REDIS_IMAGE": REDIS_IMAGE,
            "VOICEMOOD_ENV_FILE": str(ROOT / ".env.example"),  # never the developer's .env
            "SMOKE_REDIS_PORT": str(ports["redis"]),
            "SMOKE_SERVE_METRICS_PORT": str(ports["serve"]),
            "SMOKE_WORKER1_METRICS_PORT": str(ports["worker1"]),
            "SMOKE_WORKER2_METRICS_PORT": str(ports["worker2"]),
            "SMOKE_WEB_PORT": str(ports["web"]),
            "SMOKE_WEB_USERS": web_login,
            "SMOKE_FLOWER_PORT": str(ports["flower"]),
            "SMOKE_FLOWER_USERS": flower_login,
            "SMOKE_TELEGRAM_TOKEN": token,
            "SMOKE_TELEGRAM_URL": fake.url,
        })
        stack = Stack(workdir, env)
        stack.down(volumes=True)  # whatever an interrupted earlier run left behind
        stack.write_config()
        say("ok", f"fake Telegram Bot API on {fake.url}; stack ports {json.dumps(ports)}")
        stack.up()
        say("ok", "docker-compose up: " + ", ".join(SERVICES))
        check_health(stack, ports, flower_login)
        alice = fk.user(5101, "Alice", "en")
        bob = fk.user(5102, "Bob", "en")
        check_first_note(fake, workdir, alice)
        check_worker_killed(stack, fake, workdir, bob)
        check_history_survives(stack, fake, alice)
        ok = True
    except SmokeFailure as exc:
        say("FAIL", str(exc))
        if stack is not None:
            dump_logs(stack)
    except KeyboardInterrupt:
        say("FAIL", "interrupted")
    finally:
        if stack is not None and not args.keep:
            try:
                stack.down(volumes=True)
                say("ok", f"cleaned up: the {PROJECT} containers and volume, the fake server")
            except SmokeFailure as exc:
                say("FAIL", f"clean-up: {exc}")
                ok = False
        if fake is not None:
            fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    verdict = "PASSED" if ok else "FAILED"
    print(f"docker smoke test {verdict} in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
