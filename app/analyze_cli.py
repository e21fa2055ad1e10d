"""``voicemood analyze FILE...``: many files through the models at once, results in order.

The engine batches the notes that wait for it together (inference/engine.py), but only
notes that are in flight together can share a batch: analysed one after another, every
file paid a whole beam search of its own. So up to ``--jobs`` files are analysed at once
(read, decoded, through the models) while the results are printed, and recorded in the
history, strictly in the order the files were named. Recording in order keeps each note's
tag read against the notes recorded before it (the person's usual voice, see
:meth:`bot.core.service.AnalysisService.record`), exactly as one file after another would.

A file the queue refuses as busy (the engine's or the broker's admission, which counts the
audio waiting) while other files of this run are in flight waits for one of them to finish
and is tried again: the run itself filled the queue. Alone, it is reported busy like any
other failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from inference.errors import Busy, InputError

if TYPE_CHECKING:
    from app.progress import Progress
    from bot.analysis import Analysis
    from bot.core.service import AnalysisService

log = logging.getLogger(__name__)

#: Files in flight per note of VOICEMOOD_BATCH_SIZE, unless --jobs says otherwise: one
#: batch being analysed and the next one waiting for the model thread.
JOBS_PER_BATCH_SLOT = 2


def default_jobs(batch_size: int) -> int:
    """Files analysed at once when ``--jobs`` is not given."""
    return max(1, JOBS_PER_BATCH_SLOT * batch_size)


async def cmd_analyze(settings, args) -> int:
    """``voicemood analyze``: one line (or JSON object) per file; non-zero if any failed.

    Results go to standard output; progress ("loading models…", ``[n/N] FILE``) to
    standard error (:mod:`app.progress`), so ``--json`` output stays one object a line.
    """
    from app.preflight import open_service_or_refuse
    from app.progress import Progress
    from bot.analysis import Sender
    from inference.errors import VoicemoodError

    progress = Progress(len(args.files))
    if not settings.broker_url:  # scale-out mode loads nothing here
        progress.loading()
    service = await open_service_or_refuse(settings)
    jobs = args.jobs or default_jobs(settings.batch_size)
    failures = 0
    try:
        async with contextlib.aclosing(
                analyse_ahead(service, args.files, jobs, progress)) as results:
            async for number, path, outcome in results:
                progress.start(number, str(path))
                try:
                    if isinstance(outcome, BaseException):
                        raise outcome
                    analysis = outcome
                    if not args.no_store:
                        sender = Sender("cli", args.user, "cli", uuid.uuid4().hex)
                        analysis = await service.record(analysis, sender)
                except VoicemoodError as exc:
                    failures += 1
                    progress.clear()
                    _print_error(path, exc, args.json)
                    continue
                except Exception as exc:  # never lose the other files to one surprise
                    failures += 1
                    progress.clear()
                    log.exception("analysis of %s failed", path)
                    _print_error(path, exc, args.json)
                    continue
                progress.clear()
                _print_result(path, analysis, args.json)
    finally:
        progress.clear()
        await service.close()
    return 1 if failures else 0


async def analyse_ahead(service: AnalysisService, files: list[Path], jobs: int,
                        progress: Progress
                        ) -> AsyncIterator[tuple[int, Path, Analysis | BaseException]]:
    """``(number, path, analysis or the error)`` for each file, in the order of ``files``,
    with up to ``jobs`` files in flight at once. Nothing is stored."""
    # Notes of this run inside the service now, and notes of it finished so far; `changed`
    # is set (and replaced) whenever either moves, for the notes waiting after a "busy".
    active = 0
    finished = 0
    changed = asyncio.Event()

    def moved() -> None:
        nonlocal changed
        changed.set()
        changed = asyncio.Event()

    async def one(number: int, path: Path) -> Analysis:
        nonlocal active, finished
        data = _read_file(path)
        while True:
            active += 1
            try:
                result = await service.analyze_bytes(data, progress.stage_of(number))
            except Busy:
                active -= 1
                moved()
                if not active:
                    raise  # none of this run's notes is ahead of it: the queue is others'
                mark = finished
                while finished == mark and active:
                    await changed.wait()
                if finished == mark:
                    raise  # this run's notes ahead of it all waited too: not ours to wait for
                continue
            except BaseException:
                active -= 1
                finished += 1
                moved()
                raise
            active -= 1
            finished += 1
            moved()
            return result

    ahead: deque[tuple[int, Path, asyncio.Task[Analysis]]] = deque()
    numbered = iter(enumerate(files, 1))
    try:
        while True:
            while len(ahead) < jobs:
                nxt = next(numbered, None)
                if nxt is None:
                    break
                number, path = nxt
                ahead.append((number, path, asyncio.create_task(one(number, path))))
            if not ahead:
                return
            number, path, task = ahead.popleft()
            try:
                outcome: Analysis | BaseException = await task
            except Exception as exc:
                outcome = exc
            yield number, path, outcome
    finally:
        for _number, _path, task in ahead:
            task.cancel()
        await asyncio.gather(*(task for _n, _p, task in ahead), return_exceptions=True)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", code="not_found") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory", code="not_found") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied", code="unreadable") from None


def _print_result(path: Path, analysis: Analysis, as_json: bool) -> None:
    from bot.wording import format_analysis

    if as_json:
        print(json.dumps({"file": str(path), **analysis.to_json()}, ensure_ascii=False),
              flush=True)
    else:
        print(f"== {path}\n{format_analysis(analysis, analysis.language)}\n", flush=True)


def _print_error(path: Path, exc: BaseException, as_json: bool) -> None:
    from bot.analysis import error_json

    body = error_json(exc)
    if as_json:
        print(json.dumps({"file": str(path), **body}, ensure_ascii=False), flush=True)
    else:
        print(f"== {path}\nerror ({body['error']['code']}): {body['error']['message']}\n",
              flush=True)
