"""A flood of large uploads to the web server: its peak memory, and what each sender got.

Run from the repository root (a minute or two, most of it model loading)::

    .venv/bin/python bench/upload_flood.py [--uploads 30] [--mb 45] [--route api|page]
                                           [--json OUT]

It starts a real ``voicemood web`` (default settings, a throw-away database, loopback) as a
child process, waits for ``/healthz``, then sends ``--uploads`` uploads of ``--mb`` MB of
random bytes (not audio) at once: to ``POST /api/analyze`` (``--route api``) or to Gradio's
``POST /gradio_api/upload`` (``--route page``). It reports the HTTP statuses the senders got
and the server's resident memory before the flood and at its peak (the kernel's high-water
mark, ``VmHWM``), so a reader sees what one flood costs the machine (issue 18, item 8).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.queue_bench import free_port  # noqa: E402

ROUTES = {"api": ("/api/analyze", "file"), "page": ("/gradio_api/upload", "files")}


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak so far (VmHWM) of ``pid``, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until ``/healthz`` answers 200; fail if the server exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"voicemood web exited with {proc.returncode}")
            try:
                async with http.get(url + "/healthz") as reply:
                    if reply.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit(f"voicemood web did not answer /healthz within {timeout:.0f} s")


async def flood(url: str, route: str, uploads: int, body: bytes) -> collections.Counter[int]:
    """Send ``uploads`` uploads of ``body`` at once; the count of each HTTP status."""
    path, field = ROUTES[route]
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async def one(i: int) -> int:
            form = aiohttp.FormData()
            form.add_field(field, body, filename=f"flood{i}.ogg",
                           content_type="application/octet-stream")
            try:
                async with http.post(url + path, data=form) as reply:
                    await reply.read()
                    return reply.status
            except aiohttp.ClientError:
                return 0  # the connection was cut

        return collections.Counter(await asyncio.gather(*(one(i) for i in range(uploads))))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--mb", type=float, default=45.0, help="size of each upload, MB")
    parser.add_argument("--route", choices=sorted(ROUTES), default="api")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="voicemood-upload-flood-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VOICEMOOD_", "TELEGRAM_", "SLACK_"))}
    env.update({"VOICEMOOD_WEB_PORT": str(port), "VOICEMOOD_DB": str(folder / "flood.db"),
                "GRADIO_ANALYTICS_ENABLED": "False"})
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "web"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url, proc, timeout=300)
        before = memory_mb(proc.pid)
        body = os.urandom(int(args.mb * 1024 * 1024))
        started = time.perf_counter()
        statuses = await flood(url, args.route, args.uploads, body)
        wall = time.perf_counter() - started
        after = memory_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    figures = {
        "route": ROUTES[args.route][0], "uploads": args.uploads, "mb_each": args.mb,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "rss_before_mb": round(before["VmRSS"]), "rss_peak_mb": round(after["VmHWM"]),
        "rss_after_mb": round(after["VmRSS"]), "wall_s": round(wall, 1),
    }
    print(f"{args.uploads} uploads of {args.mb:g} MB to {figures['route']} in {wall:.1f} s: "
          f"statuses {figures['statuses']}; server RSS {figures['rss_before_mb']} MB before, "
          f"peak {figures['rss_peak_mb']} MB, {figures['rss_after_mb']} MB after")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
