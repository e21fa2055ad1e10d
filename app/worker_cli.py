"""``voicemood worker [--concurrency N]`` and the workers' part of ``voicemood models status``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.ops.settings import Settings

#: How long ``models status`` waits for workers to say which tier they run.
INSPECT_TIMEOUT_S = 2.0


def add_parser(sub: Any) -> None:
    """Register the ``worker`` sub-command."""
    p = sub.add_parser(
        "worker", help="run a model worker (scale-out mode, needs VOICEMOOD_BROKER_URL)",
        description="Load the models once and analyse notes from the Celery queue at "
                    "VOICEMOOD_BROKER_URL. Run as many as you like, on any machine.")
    p.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="notes taken at once (threads feeding one engine, so they batch); "
                        "default VOICEMOOD_BATCH_SIZE")


def run_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Load the models, then consume the queue until stopped (SIGTERM: warm shutdown)."""
    if not settings.broker_url:
        print("voicemood worker: set VOICEMOOD_BROKER_URL (e.g. redis://127.0.0.1:6379/0) "
              "to the Redis that the front ends use.", file=sys.stderr)
        return 2
    concurrency = args.concurrency or settings.batch_size
    if concurrency < 1:
        print("voicemood worker: --concurrency must be at least 1", file=sys.stderr)
        return 2
    from workers import tasks
    from workers.celery import QUEUE, app

    host = tasks.start_host(settings)  # models load before the first note is taken
    if settings.metrics_port:
        from bot.ops.metrics import start_health_server

        async def ready() -> tuple[bool, str]:
            if not host.ready.is_set():
                return False, "models loading"
            ok = await asyncio.to_thread(_broker_reachable, settings.broker_url)
            return (True, "ok") if ok else (False, "broker unreachable")

        async def queued() -> int:
            return host.queued()

        host.call(start_health_server(settings.metrics_port, ready, queued,
                                      host=settings.metrics_host))
    argv = [
        "worker", "--pool=threads", f"--concurrency={concurrency}", f"--queues={QUEUE}",
        # Unique per process, so several workers on one machine are told apart in Flower.
        f"--hostname=voicemood-{os.getpid()}@%h",
        # No --task-events: events would publish each result (a transcript) on Redis.
        f"--loglevel={settings.log_level.upper()}", "--optimization=fair",
    ]
    # Celery logs each task's return value at INFO: that is the user's transcript, which
    # stays out of the logs (failures are still logged, at ERROR).
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        host.close()
    return 0


def _broker_reachable(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def print_worker_models(settings: Settings) -> None:
    """Print each running worker's device and tiers (``voicemood models status``)."""
    from workers.celery import make_app

    app = make_app(settings)
    try:
        replies = app.control.broadcast("voicemood_models", reply=True,
                                        timeout=INSPECT_TIMEOUT_S) or []
    except Exception as exc:  # the broker is down: say so, the local part is still useful
        print(f"workers: broker unreachable ({type(exc).__name__})")
        return
    finally:
        app.close()
    if not replies:
        print("workers: none answered")
        return
    for reply in replies:
        for name, info in sorted(reply.items()):
            state = "" if info.get("ready") else " (loading)"
            print(f"worker {name}: device {info.get('device', '?')}{state}")
            for component, c in sorted(info.get("components", {}).items()):
                print(f"  {component:14} {c['tier']:8} {c['model']}")
