"""The web page (Gradio) and the JSON API on one FastAPI server, over one AnalysisService.

The page: an *Analyse* tab (record or upload, then the tag, the voice and words readings,
the transcript, duration, language, and the timings in a collapsed panel) and a *History*
tab (recent notes and the ``/trend`` summary with its chart for 7 / 30 / 90 days). English
or Chinese, chosen from the browser's ``Accept-Language`` and switchable on the page.

Works offline: Gradio's analytics are off, the default theme's fonts come with Gradio (a
``GoogleFont`` theme would fetch from Google), FastAPI's docs pages (which load Swagger from
a CDN) are off, and there is no server-side rendering through Node. An uploaded or
recorded clip is read and its file deleted at once, with its content-hash folder (a clip
uploaded and never analysed is swept from Gradio's cache within minutes; anything else left
in the upload folder, which is ours, by :func:`sweep_uploads` after ten). The trend chart
goes to the browser inline, so it is never written to disk.

An event's clip is only ever a file that Gradio's upload route wrote. A client names the
clip of an ``analyze`` event by a server path (a ``FileData``), so two checks stand between
that path and the disk: Gradio's own (it accepts only its upload folder, but only once the
app is marked launched, which ``mount_gradio_app`` does not do: :func:`build_app` does it),
and :func:`_read_upload` in the handler (an upload of this server, a regular file inside the
upload folder, its size bounded before a byte is read, read in a thread).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import json
import logging
import os
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

# Before Gradio is imported: it reads the setting at import time as well as per Blocks.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
#: Gradio's upload folder unless the operator names one: ours alone (per system user, mode
#: 0700), so that sweeping it (:func:`sweep_uploads`) touches nothing of another program's,
#: and leftovers of an earlier run are found again at the next start.
UPLOAD_FOLDER = os.path.join(tempfile.gettempdir(), f"voicemood-gradio-{os.getuid()}")
os.environ.setdefault("GRADIO_TEMP_DIR", UPLOAD_FOLDER)

import gradio as gr  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

from adapters.web import texts  # noqa: E402
from adapters.web.api import (  # noqa: E402
    PLATFORM,
    UploadAdmission,
    build_api,
    install_error_handlers,
)
from adapters.web.auth import LOCAL_USER, Access, TooManyLogins  # noqa: E402
from bot import wording  # noqa: E402

# Analysis at run time: Gradio reads the events' type hints to find the gr.Request.
from bot.analysis import Analysis, Sender, error_json  # noqa: E402
from inference import stages  # noqa: E402
from inference.errors import EmptyInput, InputError, TooLarge  # noqa: E402
from inference.types import TAG_ZH  # noqa: E402

if TYPE_CHECKING:
    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings

log = logging.getLogger(__name__)

#: Port of ``voicemood web`` when ``VOICEMOOD_WEB_PORT`` is unset (the seed's Gradio port).
DEFAULT_PORT = 6006
#: Notes listed on the History tab.
RECENT_NOTES = 20
PERIODS = ["7", "30", "90"]
#: Seconds between sweeps of Gradio's cache, and the age at which its files go.
CACHE_SWEEP = (60, 120)
#: Age (seconds since last written) at which anything left in the upload folder goes: a
#: file Gradio's own sweep does not know (an upload cut off before its end, a run killed
#: mid-analysis), and the empty content-hash folders each upload leaves. Ten minutes: an
#: upload still being written has a fresh mtime.
STALE_UPLOAD_S = 600.0


def _user(request: gr.Request | None) -> str:
    return (request.username if request is not None else None) or LOCAL_USER


class NotUploaded(InputError):
    """The event names a file that no upload to this page made."""

    code = "not_uploaded"


def _read_upload(path: str, uploaded: Collection[str], max_bytes: int) -> bytes:
    """The clip Gradio's upload route stored for this event; its file goes once read.

    Blocking (a thread's work). Refuses with :class:`NotUploaded` a path that Gradio's
    upload route did not write (``uploaded``, its record of them) or that is not a regular
    file inside its upload folder, and with :class:`TooLarge` a file over ``max_bytes``
    before reading it. A refused path is neither read nor deleted: before this check a
    client-chosen path was read whole, hashed (``/dev/zero`` never ends) and unlinked.
    """
    folder = os.path.realpath(get_upload_folder())
    real = os.path.realpath(path)
    if path not in uploaded or os.path.commonpath([folder, real]) != folder or real == folder:
        raise NotUploaded("This file was not uploaded to this page.")
    try:
        # No symlink followed, and a FIFO does not block the open.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise NotUploaded("This file was not uploaded to this page.") from None
    try:
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise NotUploaded("This file was not uploaded to this page.")
            if info.st_size > max_bytes:
                raise TooLarge(f"The file is {wording.human_bytes(info.st_size)}; the limit "
                               f"is {wording.human_bytes(max_bytes)}.")
            data = fh.read(max_bytes + 1)  # bounded even if the file grows meanwhile
    finally:
        with contextlib.suppress(OSError):
            os.unlink(real)
        # Gradio puts each upload in a folder named by its hash: that goes too, when empty.
        parent = os.path.dirname(real)
        if parent != folder:
            with contextlib.suppress(OSError):
                os.rmdir(parent)
    if len(data) > max_bytes:
        raise TooLarge(f"The file is over the limit of {wording.human_bytes(max_bytes)}.")
    if not data:
        raise EmptyInput("The file is empty.")
    return data


def sweep_uploads(folder: str, max_age_s: float = STALE_UPLOAD_S) -> int:
    """Delete files and empty folders under ``folder`` untouched for ``max_age_s`` seconds.

    Blocking (a thread's work). Returns how many entries went. Only what Gradio left: the
    upload folder is ours (:data:`UPLOAD_FOLDER`) unless ``GRADIO_TEMP_DIR`` names another.
    """
    cutoff = time.time() - max_age_s
    gone = 0
    emptied: set[str] = set()  # deleting inside a folder makes its own mtime fresh
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                if os.lstat(path).st_mtime < cutoff:
                    os.unlink(path)
                    gone += 1
                    emptied.add(root)
        for name in dirs:
            path = os.path.join(root, name)
            # rmdir takes only an empty folder; a fresh one may be about to get its upload.
            with contextlib.suppress(OSError):
                if path in emptied or os.lstat(path).st_mtime < cutoff:
                    os.rmdir(path)
                    gone += 1
                    emptied.add(root)
    return gone


def own_upload_folder() -> str:
    """Gradio's upload folder, made ours (mode 0700) when it is :data:`UPLOAD_FOLDER`.

    Raises :class:`RuntimeError` (one line for the operator) when that path exists and is
    not a folder of this system user: in a shared temp folder another user could have made
    it first and would read every upload.
    """
    folder = get_upload_folder()
    if os.path.abspath(folder) != os.path.abspath(UPLOAD_FOLDER):
        return folder  # the operator's GRADIO_TEMP_DIR: theirs to set up
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RuntimeError(f"the web page's upload folder {folder} is not a folder of this "
                           "user; remove it or set GRADIO_TEMP_DIR to a folder of your own")
    os.chmod(folder, 0o700)
    return folder


async def _sweep_forever(every_s: float) -> None:
    """:func:`sweep_uploads` now and every ``every_s`` seconds, until cancelled."""
    while True:
        try:
            gone = await asyncio.to_thread(sweep_uploads, get_upload_folder())
        except OSError as exc:  # a missing or unreadable folder: try again next round
            log.warning("could not sweep the upload folder: %s", exc)
        else:
            if gone:
                log.info("swept %d stale entries from the upload folder", gone)
        await asyncio.sleep(every_s)


def _refused(message: str, t: dict[str, str]) -> list[Any]:
    """The analyse event's outputs for a refusal: the refusal where the result would be.

    Returned, not raised: a raised gr.Error left the previous note's result on the page
    under red "Error" badges (it read as this file's result once the toast faded), and
    Gradio printed its ~16-line traceback to the server's stderr. A toast, titled in the
    page's language, still says it at once.
    """
    gr.Warning(message, title=t["error"])
    return [gr.update(value=f"**{t['error']}**: {message}"), gr.update(visible=False),
            *_result(None, "en"), None]


def _tag_md(a: Analysis) -> str:
    return "### " + wording.tag_line(a.label, a.emotion.confidence, a.emotion.valence)


def _readings_md(a: Analysis, lang: str) -> str:
    t = texts.ui(lang)
    voice, text = a.emotion.voice, a.emotion.text
    lines = [t["voice"].format(label=wording.voice_label(voice.label, lang),
                               arousal=voice.arousal) if voice else t["voice_off"]]
    if text is not None:
        label = text.label if lang == "en" else TAG_ZH.get(text.label, text.label)
        lines.append(t["words"].format(label=label, score=text.scores.get(text.label, 0.0)))
    else:
        lines.append(t["words_off"])
    return "\n\n".join(lines)


def _result(a: Analysis | None, lang: str) -> list[Any]:
    """Values of the result components for ``a`` (all empty without one)."""
    if a is None:
        return ["", "", "", "", ""]
    t = texts.ui(lang)
    details = t["duration_language"].format(duration=a.duration_s, language=a.language or "?")
    return [_tag_md(a), _readings_md(a, lang), a.transcript, details,
            timings_md(a.timings, a.models, lang)]


def timings_md(timings: dict[str, float], models: dict[str, str], lang: str) -> str:
    """The *Timings and models* panel: stages in words with seconds, counts as whole
    numbers, then each model (it showed the raw dict, counts as floats)."""
    t, lang = texts.ui(lang), texts.code(lang)
    stages, counts, names = texts.STAGES[lang], texts.COUNTS[lang], texts.MODELS[lang]
    rows = [f"| {t['col_step']} | {t['col_value']} |", "|---|---:|"]
    for key, value in timings.items():
        if key in counts:
            rows.append(f"| {counts[key]} | {int(value)} |")
        elif key != "total":
            rows.append(f"| {stages.get(key, key)} | {t['seconds'].format(s=value)} |")
    if "total" in timings:
        rows.append(f"| **{stages['total']}** | **{t['seconds'].format(s=timings['total'])}** |")
    rows += ["", f"| {t['col_model']} | |", "|---|---|"]
    rows += [f"| {names.get(key, key)} | `{model}` |" for key, model in models.items()]
    return "\n".join(rows)


def _chart_html(png: bytes, title: str) -> str:
    """The chart as an inline image: no file in Gradio's cache for anyone to fetch later."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<img src="data:image/png;base64,{data}" alt="{html.escape(title)}" '
            'style="max-width: 100%; height: auto">')


def build_demo(service: AnalysisService, settings: Settings) -> gr.Blocks:
    """The page: Analyse and History tabs; the analysis is also Gradio's ``analyze`` endpoint."""

    async def analyse(path: str | None, lang: str, request: gr.Request,
                      progress: gr.Progress = gr.Progress()) -> list[Any]:  # noqa: B008
        """One recorded or uploaded clip -> tag, readings, transcript, details, timings."""
        t = texts.ui(lang)
        if not path:
            return _refused(t["no_audio"], t)
        progress(0.0, desc=t["working"])
        user = _user(request)

        def show_stage(stage: str, done: float) -> None:
            progress(stages.fraction(stage, done), desc=t[f"stage_{stage}"])

        try:
            # In a thread: a slow disk must not stall the loop that serves everyone.
            audio = await asyncio.to_thread(_read_upload, path, demo.upload_file_set,
                                            settings.max_audio_bytes)
            analysis = await service.analyze(
                audio, Sender(PLATFORM, user, user, uuid.uuid4().hex), on_stage=show_stage)
        except NotUploaded:
            log.warning("web user %r named a file that was not uploaded; refused", user)
            return _refused(t["not_uploaded"], t)
        except Exception as exc:
            code = error_json(exc)["error"]["code"]
            if code == "internal":
                log.exception("analysis of a web upload failed")
            else:  # a refusal is the person's file, not our fault: one line, no traceback
                log.info("web upload refused: %s", code)
            return _refused(wording.error_reply(exc, lang, settings), t)
        return [gr.update(value=""), gr.update(visible=True), *_result(analysis, lang),
                analysis]

    def clearing(lang: str) -> list[Any]:
        """Before each analysis: the previous note's result goes (it read as this note's)."""
        return [gr.update(value=texts.ui(lang)["working"]), gr.update(visible=False),
                *_result(None, lang), None]

    async def show_history(days: str, lang: str, request: gr.Request) -> list[Any]:
        """The trend summary, its chart and the recent notes of the signed-in user."""
        t = texts.ui(lang)
        user = _user(request)
        report = await service.trend(PLATFORM, user, int(days), lang)
        items = await service.history(PLATFORM, user, RECENT_NOTES)
        zone = ZoneInfo(settings.tz)
        rows = [[datetime.fromtimestamp(a.created_at, zone).strftime("%Y-%m-%d %H:%M"),
                 wording.tag_line(a.label, a.emotion.confidence, a.emotion.valence),
                 a.transcript] for a in items]
        chart = _chart_html(report.png, t["chart"]) if report.png else ""
        table = {"headers": [t["col_time"], t["col_tag"], t["col_transcript"]],
                 "data": rows or [["", "", ""]]}
        summary = "\n\n".join(line for line in report.text.splitlines() if line.strip())
        return [summary, chart, table]

    def relabel(lang: str) -> list[Any]:
        """Every fixed text of the page in ``lang``."""
        t = texts.ui(lang)
        return [
            gr.update(value=t["title"]), gr.update(value=t["intro"]),
            gr.update(label=t["language"]),
            gr.Tab(label=t["tab_analyse"]), gr.Tab(label=t["tab_history"]),
            gr.update(label=t["audio"]), gr.update(value=t["analyse"]),
            gr.update(label=t["tag"]), gr.update(label=t["readings"]),
            gr.update(label=t["transcript"]), gr.update(label=t["details"]),
            gr.Accordion(label=t["timings"]),
            gr.update(label=t["days"]), gr.update(value=t["refresh"]),
            gr.update(label=t["trend"]), gr.update(),
            gr.update(label=t["recent"]),
        ]

    def who(lang: str, request: gr.Request) -> str:
        t = texts.ui(lang)
        if request is not None and request.username:
            # HTML, not Markdown: Gradio opens Markdown links in a new tab, which left this
            # tab signed in. Gradio's /logout ends the login's sessions and shows the form.
            link = f'<a href="logout" target="_self" id="logout">{html.escape(t["logout"])}</a>'
            return t["signed_in"].format(user=html.escape(request.username), logout=link)
        return t["local"]

    async def on_load(request: gr.Request) -> list[Any]:
        lang = texts.lang_from_header(request.headers.get("accept-language"))
        return [lang, who(lang, request), *await show_history(PERIODS[0], lang, request)]

    async def on_language(lang: str, days: str, last: Analysis | None,
                          request: gr.Request) -> list[Any]:
        return [*relabel(lang), who(lang, request), *_result(last, lang),
                gr.update(visible=last is not None), *await show_history(days, lang, request)]

    t = texts.ui("en")
    with gr.Blocks(title="voicemood", analytics_enabled=False,
                   delete_cache=CACHE_SWEEP) as demo:
        last = gr.State(None)
        with gr.Row():
            with gr.Column(scale=4):
                title = gr.Markdown(t["title"])
                intro = gr.Markdown(t["intro"])
                account = gr.HTML(elem_id="account")
            lang = gr.Radio([("English", "en"), ("中文", "zh")], value="en", scale=1,
                            label=t["language"], elem_id="language")
        with gr.Tab(t["tab_analyse"], elem_id="tab-analyse") as analyse_tab:
            clip = gr.Audio(sources=["upload", "microphone"], type="filepath",
                            label=t["audio"], elem_id="clip")
            run = gr.Button(t["analyse"], variant="primary", elem_id="analyse")
            # Progress, then a refusal or nothing; empty (and so invisible) until a run.
            status = gr.Markdown(elem_id="status")
            with gr.Column(visible=False, elem_id="result") as result_box:
                tag = gr.Markdown(label=t["tag"], show_label=True, container=True,
                                  elem_id="tag")
                readings = gr.Markdown(label=t["readings"], show_label=True, container=True,
                                       elem_id="readings")
                transcript = gr.Textbox(label=t["transcript"], interactive=False, lines=3,
                                        elem_id="transcript")
                details = gr.Markdown(label=t["details"], show_label=True, container=True,
                                      elem_id="details")
                with gr.Accordion(t["timings"], open=False,
                                  elem_id="timings") as timings_panel:
                    timings = gr.Markdown(elem_id="timings-table")
        with gr.Tab(t["tab_history"], elem_id="tab-history") as history_tab:
            with gr.Row():
                days = gr.Radio(PERIODS, value=PERIODS[0], label=t["days"], elem_id="days")
                refresh = gr.Button(t["refresh"], elem_id="refresh")
            trend = gr.Markdown(label=t["trend"], show_label=True, container=True,
                                elem_id="trend")
            chart = gr.HTML(elem_id="chart")
            recent = gr.Dataframe(label=t["recent"], interactive=False, wrap=True,
                                  elem_id="recent")

        # Events last, as in the Gradio examples.
        result = [tag, readings, transcript, details, timings]
        history = [trend, chart, recent]
        labelled = [title, intro, lang, analyse_tab, history_tab, clip, run, tag, readings,
                    transcript, details, timings_panel, days, refresh, trend, chart, recent]
        # The engine batches and refuses when full: Gradio must not serialise the calls.
        shown = [status, result_box, *result, last]
        run.click(clearing, inputs=[lang], outputs=shown, api_name=False, queue=False,
                  show_progress="hidden").then(
            analyse, inputs=[clip, lang], outputs=shown, api_name="analyze",
            concurrency_limit=None, show_progress_on=[status])
        for trigger in (refresh.click, days.change, history_tab.select):
            trigger(show_history, inputs=[days, lang], outputs=history, api_name=False,
                    concurrency_limit=None)
        demo.load(on_load, outputs=[lang, account, *history], api_name=False)
        lang.change(on_language, inputs=[lang, days, last],
                    outputs=[*labelled, account, *result, result_box, *history],
                    api_name=False)
    return demo


#: Gradio's own refusal of a file over ``max_file_size``, thrown in the browser before the
#: upload starts (its client, Gradio 6.31): English, with the limit as "50.0 Mb".
GRADIO_SIZE_REFUSAL = "File(s) exceed the maximum allowed size of"

#: Rewrites that one toast in the page's language, with the limit in the one wording of
#: every refusal. Gradio has no hook for its client-side messages, so a MutationObserver
#: mends the toast as it appears. __SAY__ is {lang: {title, text}}.
_SIZE_TOAST_JS = """
(() => {
  const SAY = __SAY__;
  const lang = () => {
    const zh = [...document.querySelectorAll("#language label")].find(
      (l) => l.textContent.trim() === "中文");
    return zh && zh.querySelector("input") && zh.querySelector("input").checked ? "zh" : "en";
  };
  const mend = () => {
    for (const el of document.querySelectorAll(".toast-text, .toast-message-text")) {
      if (!el.textContent.includes(__GRADIO__)) continue;
      const say = SAY[lang()];
      el.textContent = say.text;
      const toast = el.closest(".toast-body, .toast-item");
      const title = toast && toast.querySelector(".toast-title");
      if (title) title.textContent = say.title;
    }
  };
  new MutationObserver(mend).observe(document.documentElement,
                                     {childList: true, subtree: true, characterData: true});
})();
"""


def size_toast_head(settings: Settings) -> str:
    """The page's ``<head>`` script that says Gradio's too-large refusal in the page's
    language, as the bots say it (e.g. "That file is too large for me (50 MB)...")."""
    too_large = TooLarge("over the limit")
    say = {lang: {"title": texts.ui(lang)["error"],
                  "text": wording.error_reply(too_large, lang, settings)}
           for lang in ("en", "zh")}
    # JSON is valid JavaScript; "</" is escaped so no text can close the script element.
    js = (_SIZE_TOAST_JS.replace("__SAY__", json.dumps(say, ensure_ascii=False))
          .replace("__GRADIO__", json.dumps(GRADIO_SIZE_REFUSAL)))
    return "<script>" + js.replace("</", "<\\/") + "</script>"


def build_app(service: AnalysisService, settings: Settings, access: Access) -> FastAPI:
    """One FastAPI app: the JSON API and ``/healthz``, then the page mounted at ``/``."""
    # No /docs or /redoc: FastAPI's pages load Swagger UI from a CDN.
    app = FastAPI(title="voicemood", docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    app.include_router(build_api(service, settings, access))
    demo = build_demo(service, settings)
    # The async check: bcrypt runs in a thread, not on the loop that serves everyone.
    auth = None if access.open else access.check_password_async
    mounted = gr.mount_gradio_app(
        app, demo, path="/", auth=auth, auth_message="voicemood",
        max_file_size=settings.max_audio_bytes, ssr_mode=False, footer_links=[],
        run_history=False, mcp_server=False, enable_monitoring=False, pwa=False,
        # Only gr.Error texts reach people, never an exception's own text.
        show_error=False, app_kwargs={"openapi_url": None}, head=size_toast_head(settings),
    )
    # launch() sets this flag, mount_gradio_app() does not (Gradio 6.31). Without it the
    # check that an event's input file lies in Gradio's upload folder
    # (processing_utils._check_allowed) returns at once, and Gradio would open, hash (on
    # the event loop) and copy any server path a client put in a FileData.
    demo.has_launched = True
    mounted.add_middleware(LoginLimit, access=access)
    mounted.add_middleware(UploadAdmission, service=service, limit=settings.max_audio_bytes)
    return mounted


#: Largest body of a login form (two short fields): more is refused unread.
LOGIN_BODY_MAX = 16 * 1024


class LoginLimit:
    """ASGI middleware: Gradio's ``POST /login`` behind the :class:`~adapters.web.auth.LoginGuard`.

    Gradio's route hands the auth function only the name and password, never the client's
    address, so the count happens here: the form's ``username`` is read (a bounded body),
    one pair's attempts take turns, Gradio's 400 counts as a failure and its 200 clears the
    pair. Over the limit the answer
    is 429 ``{"detail": "Too many failed logins; wait N s and try again."}`` with
    ``Retry-After``, and no password is checked.
    """

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"].rstrip("/") != "/login" or self.access.open):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > LOGIN_BODY_MAX:
                await JSONResponse({"detail": "Login form too large."}, 413)(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # a disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(scope, replay).form()
            user = str(form.get("username") or "").strip()  # Gradio strips it too
        except Exception:  # a malformed form: Gradio's own answer (422) follows
            user = ""
        replayed = False
        address = scope["client"][0] if scope.get("client") else ""
        guard = self.access.guard
        async with guard.turn(address, user):
            try:
                guard.check(address, user)
            except TooManyLogins as exc:
                log.info("login refused: too many failed attempts for one name from %s",
                         address)
                await JSONResponse({"detail": str(exc)}, 429,
                                   {"Retry-After": str(exc.wait_s)})(scope, receive, send)
                return

            async def watch(message: Message) -> None:
                if message["type"] == "http.response.start":
                    # Gradio: 200 for a right password, 400 for a wrong one.
                    if message["status"] == 200:
                        guard.succeeded(address, user)
                    elif message["status"] == 400:
                        guard.failed(address, user)
                await send(message)

            await self.app(scope, replay, watch)


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the CLI owns SIGINT/SIGTERM and cancels us."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"the web page cannot listen on {host}:{port}: "
                           f"{exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class RunningWeb:
    """A started web server: its address, and the task that runs it."""

    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]
    sock: socket.socket
    #: Sweeps the upload folder (:func:`sweep_uploads`) while the server runs.
    sweeper: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """Finish open requests and close the listening socket."""
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.sock.close()


async def start_web(service: AnalysisService, settings: Settings,
                    port: int | None = None) -> RunningWeb:
    """Check access, bind, and start serving; returns once requests are answered.

    Raises :class:`~adapters.web.auth.WebAccessError` (no logins on a non-loopback host,
    bad ``VOICEMOOD_WEB_USERS``) or :class:`RuntimeError` (the port is taken).
    """
    host = settings.web_host
    if port is None:  # 0 (tests): any free port
        port = settings.web_port or DEFAULT_PORT
    access = Access.from_settings(settings, host)
    own_upload_folder()
    app = build_app(service, settings, access)
    sock = _bind(host, port)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="web")
    while not server.started:
        if task.done():
            sock.close()
            task.result()  # re-raises what stopped it
            raise RuntimeError("the web server stopped while starting")
        await asyncio.sleep(0.02)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    log.info("web page and JSON API at %s (%s)", url,
             "local user, no login" if access.open else f"{len(access.logins)} logins")
    # Also at start: what a killed earlier run left in the folder goes now.
    sweeper = asyncio.create_task(_sweep_forever(CACHE_SWEEP[0]), name="web-upload-sweep")
    return RunningWeb(url, server, task, sock, sweeper)


@contextlib.asynccontextmanager
async def running_web(service: AnalysisService, settings: Settings,
                      port: int | None = None) -> AsyncIterator[RunningWeb]:
    """:func:`start_web` as an ``async with`` block that stops the server on exit."""
    web = await start_web(service, settings, port)
    try:
        yield web
    finally:
        await web.stop()


async def serve_web(service: AnalysisService, settings: Settings) -> None:
    """Run the page and the JSON API until cancelled, then stop cleanly."""
    async with running_web(service, settings) as web:
        print(f"voicemood: web page at {web.url}", flush=True)
        await asyncio.shield(web.task)
