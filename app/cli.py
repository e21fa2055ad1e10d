"""The ``voicemood`` command line: analyse files, serve the bots, show trends, manage models."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from bot import __version__

log = logging.getLogger("voicemood")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="voicemood",
        description="Transcribe voice notes and tag their mood; run the Telegram/Slack bots.",
    )
    parser.add_argument("--version", action="version", version=f"voicemood {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("analyze", help="analyse audio files and record them in the history",
                       description="Analyse audio files (ogg, mp3, m4a, mp4, webm, wav, flac).")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--user", default="local", help="history user id (default: local)")
    p.add_argument("--json", action="store_true", help="print one JSON object per file")
    p.add_argument("--no-store", action="store_true", help="do not record in the history")
    p.add_argument("--jobs", type=_positive_int, metavar="N",
                   help="files analysed at once, so the models batch them (default: twice "
                        "VOICEMOOD_BATCH_SIZE; 1 = one after another); results are printed "
                        "and recorded in the order of the files either way")

    p = sub.add_parser("serve", help="run the Telegram and/or Slack bot (and the web page)",
                       description="Run the bots configured by TELEGRAM_BOT_TOKEN / "
                                   "SLACK_BOT_TOKEN in one process sharing one set of models.")

    p = sub.add_parser("web", help="run the web page and its JSON API",
                       description="Serve the web page and the JSON API on "
                                   "VOICEMOOD_WEB_HOST:VOICEMOOD_WEB_PORT (default "
                                   "127.0.0.1:6006); see docs/web.md and docs/api.md.")

    p = sub.add_parser("trend", help="show a user's mood trend",
                       description="Summarise a user's mood over the last N days.")
    p.add_argument("--user", default="local", help="history user id (default: local)")
    p.add_argument("--days", default="7", help="period: 7, 30d, 90d... (default 7)")
    p.add_argument("--chart", type=Path, help="write the chart PNG here")
    p.add_argument("--lang", default="en", choices=["en", "zh"], help="summary language")
    # The page keeps its notes under platform "web" (user "local" without logins), so
    # `trend --user local` alone shows only the command line's notes.
    p.add_argument("--platform", default="cli",
                   help="history platform: cli, telegram, slack, web (default cli)")

    p = sub.add_parser("models", help="show or fetch models",
                       description="Show which tier each component runs, or download the "
                                   "full tier where a model hub is reachable.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.add_parser("status", help="which model and tier each component runs")
    d = msub.add_parser("download", help="download the full-tier models into models/")
    d.add_argument("--component", action="append",
                   choices=["asr", "vad", "punc", "text_emotion", "voice_emotion"],
                   help="only this component (repeatable)")
    msub.add_parser("prepare", help="assemble the offline Whisper weights now")

    from app.export_cli import add_parser as add_export_parser

    add_export_parser(sub)

    from app.text_cli import add_parser as add_text_parser

    add_text_parser(sub)

    from app.worker_cli import add_parser as add_worker_parser

    add_worker_parser(sub)

    p = sub.add_parser("bench", help="run the benchmark (see bench/run.py)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``voicemood`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # argparse's REMAINDER cannot start with an option (`bench --json OUT`): hand the
        # rest to bench/run.py untouched.
        return cmd_bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from pydantic import ValidationError

    from app.preflight import Refusal, settings_error_line
    from bot.ops.logs import setup_logging
    from bot.ops.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:  # one line that names the bad setting, never its value
        print(f"voicemood: invalid settings: {settings_error_line(exc)}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings)
    try:
        _preflight(settings, args)
        return _dispatch(settings, args, parser)
    except Refusal as exc:
        print(f"voicemood {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


def _preflight(settings, args) -> None:
    """Refuse a setting this command cannot honour before any model loads (one line)."""
    from app.preflight import check_device, check_port_free, metrics_host

    loads_models = (args.command in ("analyze", "serve", "web") and not settings.broker_url) \
        or (args.command == "worker" and bool(settings.broker_url))
    if loads_models:
        check_device(settings)
    if args.command == "worker" and settings.broker_url and settings.metrics_port:
        check_port_free(metrics_host(settings), settings.metrics_port, "VOICEMOOD_METRICS_PORT")


def _dispatch(settings, args, parser: argparse.ArgumentParser) -> int:
    """Run the chosen sub-command."""
    if args.command == "analyze":
        from app.analyze_cli import cmd_analyze

        return asyncio.run(cmd_analyze(settings, args))
    if args.command == "serve":
        return asyncio.run(cmd_serve(settings))
    if args.command == "web":
        return asyncio.run(cmd_serve(settings, web_only=True))
    if args.command == "trend":
        return asyncio.run(cmd_trend(settings, args))
    if args.command == "text":
        from app.text_cli import run_text_cli

        return run_text_cli(settings, args)
    if args.command == "export":
        from app.export_cli import run_export_cli

        return asyncio.run(run_export_cli(settings, args))
    if args.command == "worker":
        from app.worker_cli import run_worker

        return run_worker(settings, args)
    if args.command == "models":
        return cmd_models(settings, args, parser)
    if args.command == "bench":
        return cmd_bench(args.rest)
    parser.print_help()
    return 2


async def cmd_serve(settings, web_only: bool = False) -> int:
    """``voicemood serve``: run every configured bot until interrupted, plus the web page
    when ``VOICEMOOD_WEB_PORT`` is set, or the page alone when no bot is configured.
    ``voicemood web`` (``web_only``): only the page and its JSON API."""
    from app.preflight import check_port_free, metrics_host, open_service_or_refuse

    command = "web" if web_only else "serve"
    runners = []
    if settings.telegram_bot_token and not web_only:
        from adapters.telegram import serve_telegram

        runners.append(("telegram", serve_telegram))
    if settings.slack_bot_token and not web_only:
        from adapters.slack import serve_slack

        runners.append(("slack", serve_slack))
    if web_only or not runners or settings.web_port is not None:
        from adapters.web.auth import Access, WebAccessError

        try:  # before the models load: a refusal should not take seconds
            Access.from_settings(settings)
        except WebAccessError as exc:
            print(f"voicemood {command}: {exc}", file=sys.stderr)
            return 2
        if not runners and not web_only:
            print("voicemood serve: no bot configured, so only the web page runs (its "
                  "address follows once the models are loaded). To add a bot, set "
                  "TELEGRAM_BOT_TOKEN and/or SLACK_BOT_TOKEN in .env (see .env.example).",
                  flush=True)
        from adapters.web.app import DEFAULT_PORT, serve_web

        runners.append(("web", serve_web))
        # Before the models load: a busy port used to be reported only after ~20 s.
        check_port_free(settings.web_host, settings.web_port or DEFAULT_PORT,
                        "VOICEMOOD_WEB_PORT")
    if settings.slack_bot_token and not web_only and not settings.slack_app_token \
            and not settings.slack_signing_secret:
        # Fail before spending seconds on loading models.
        print("voicemood serve: SLACK_SIGNING_SECRET is required for the Slack HTTP Events API "
              "(or set SLACK_APP_TOKEN for Socket Mode).", file=sys.stderr)
        return 2
    if settings.metrics_port:
        check_port_free(metrics_host(settings), settings.metrics_port, "VOICEMOOD_METRICS_PORT")
    service = await open_service_or_refuse(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(run(service, settings), name=name) for name, run in runners]
    log.info("serving: %s", ", ".join(name for name, _ in runners))
    stopper = asyncio.create_task(stop.wait())
    from bot.ops.metrics import start_serve_health

    health = await start_serve_health(service, settings)  # None unless VOICEMOOD_METRICS_PORT
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception() is not None:
                log.error("%s stopped: %s", task.get_name(), task.exception())
                return 1
        return 0
    finally:
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        if health is not None:
            await health.cleanup()
        await service.close()


async def cmd_trend(settings, args) -> int:
    """``voicemood trend``."""
    from app.trend_cli import run_trend_cli
    from bot.trend.summary import parse_period

    try:
        days = parse_period(args.days)
    except ValueError as exc:
        print(f"voicemood trend: {exc}", file=sys.stderr)
        return 2
    return await run_trend_cli(settings, args.user, days, args.chart, args.lang,
                               platform=args.platform)


def cmd_models(settings, args, parser: argparse.ArgumentParser) -> int:
    """``voicemood models status|download|prepare``."""
    from inference.config import InferenceConfig
    from inference.errors import ModelUnavailable

    action = args.models_command or "status"
    if action == "status":
        from inference.backends import plan
        from inference.device import resolve_device

        try:
            device = resolve_device(settings.device)
        except (RuntimeError, ValueError) as exc:
            device = f"error: {exc}"
        print(f"device: {device}")
        print(f"models dir: {Path(settings.models_dir).resolve()}")
        for info in plan(InferenceConfig.from_settings(settings)):
            print(f"{info.component:14} {info.tier:8} {info.model}"
                  + (f"  ({info.detail})" if info.detail else ""))
        if settings.broker_url:  # scale-out: the models that matter run in the workers
            from app.worker_cli import print_worker_models

            print_worker_models(settings)
        return 0
    if action == "prepare":
        from inference.whisper_weights import whisper_base_dir

        try:
            path = whisper_base_dir(Path(settings.models_dir))
        except ModelUnavailable as exc:
            print(f"voicemood models prepare: {exc}", file=sys.stderr)
            return 1
        print(f"offline Whisper base ready in {path}")
        return 0
    if action == "download":
        from inference.model_download import download_models

        try:
            done = download_models(InferenceConfig.from_settings(settings), args.component)
        except ModelUnavailable as exc:
            print(f"voicemood models download: {exc}", file=sys.stderr)
            return 1
        for component, path in done:
            print(f"{component:14} {path}")
        return 0
    parser.print_help()
    return 2


def cmd_bench(rest: list[str]) -> int:
    """``voicemood bench``: run bench/run.py from the source checkout."""
    import runpy

    script = Path(__file__).resolve().parent.parent / "bench" / "run.py"
    if not script.exists():
        print("voicemood bench: bench/run.py not found (run from a source checkout)",
              file=sys.stderr)
        return 2
    sys.argv = [str(script), *rest]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
