"""The JSON API beside the page: ``/api/analyze``, ``/api/history``, ``/api/trend``,
``/api/trend.png`` and ``/healthz`` (documented in ``docs/api.md``).

It only translates HTTP to :class:`bot.core.service.AnalysisService` calls. ``POST /api/analyze``
answers exactly what ``voicemood analyze --json`` prints for one file (the upload's name
as ``file``), errors included, with an HTTP status per error code (:data:`STATUS`).
The request body may not exceed the audio byte limit; the upload lives only in the
multipart parser's temporary file, which is closed (and so deleted) before analysis starts.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.web.auth import API_USER, LOCAL_USER, Access, TooManyLogins, basic_credentials
from bot.analysis import Sender, error_json
from bot.trend.summary import MAX_DAYS, parse_period
from bot.wording import human_bytes
from inference.errors import Busy, Unavailable

if TYPE_CHECKING:
    from bot.analysis import Analysis
    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings
    from bot.trend.summary import TrendReport

log = logging.getLogger(__name__)

PLATFORM = "web"
#: HTTP status per error code; codes not listed are input refusals (422).
STATUS = {
    "bad_request": 400,
    "empty": 400,
    "unauthorized": 401,
    "too_many_logins": 429,
    "too_large": 413,
    "not_audio": 415,
    "unsupported_codec": 415,
    "busy": 503,
    "unavailable": 503,
    "model_unavailable": 503,
    "internal": 500,
    "not_found": 404,
    "method_not_allowed": 405,
}
#: The API's routes and the method each takes (for 405 answers and their ``Allow``).
API_METHODS = {"/api/analyze": "POST", "/api/history": "GET", "/api/trend": "GET",
               "/api/trend.png": "GET"}
#: Multipart framing (boundaries, part headers, a ``store`` field) on top of the audio.
MULTIPART_SLACK = 16 * 1024
MAX_HISTORY = 100
#: The API's upload route and Gradio's (the page's recordings and files arrive there).
API_UPLOAD = "/api/analyze"
PAGE_UPLOAD = "/gradio_api/upload"


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with its HTTP status."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


class _BodyTooLarge(MultiPartException):
    """Raised from the body reader; starlette's parser then closes its temporary files.

    Gradio's parser closes and deletes its files too, and answers 413 because the message
    says "maximum allowed size".
    """


class _UploadAborted(MultiPartException):
    """The client went away mid-body: Gradio's parser then deletes its partial files."""


#: Retry-After of an upload refused while others' bodies fill the memory budget: they are
#: read and refused or queued within seconds.
UPLOAD_RETRY_S = 5


class UploadAdmission:
    """ASGI middleware: admit an upload before a byte of its body is read.

    For ``POST /api/analyze`` and Gradio's ``POST /gradio_api/upload``: a declared
    ``Content-Length`` over the limit (plus multipart framing) is answered 413 ``too_large``,
    and while the analysis queue is full 503 ``busy`` with ``Retry-After``, both unread
    (the bodies used to be buffered first: 30 parallel 45 MB uploads took the server from
    0.7 to 2.0 GB). The API route's bodies, read whole and held until their answer, share
    a memory budget (``VOICEMOOD_WEB_UPLOAD_MEMORY_BYTES``): one that would take it past
    the budget is 503 ``busy`` too, unread; one alone is always taken.
    Gradio's upload is also counted as it streams (a chunked body declares
    no length; Gradio caps each file, not the body) and cut off over the limit, and a
    client that disconnects mid-body makes Gradio delete its partial file (it kept it).
    The API route counts its own body (:func:`_read_upload`).
    """

    def __init__(self, app: ASGIApp, service: AnalysisService, limit: int) -> None:
        self.app = app
        self.service = service
        self.limit = limit
        # Bytes the API route's bodies hold in memory now: each is read whole and kept
        # until its answer, so 30 parallel 45 MB uploads took 1.4 GB even with the queue
        # far from full (bench/upload_flood.py).
        self.budget = service.settings.web_upload_budget
        self.held = 0

    def _busy(self, path: str, need: int) -> Busy | None:
        """Busy while the analysis queue is full, or while the API route's bodies in memory
        leave no room for ``need`` more bytes; None when the upload may be read."""
        if path == API_UPLOAD and self.held > 0 and self.held + need > self.budget:
            wait: float = UPLOAD_RETRY_S
        else:
            # The in-process pipeline's admission count; a remote pipeline has none here
            # and admits in its own run().
            pipeline = self.service.pipeline
            admitted = getattr(pipeline, "admitted_jobs", None)
            if admitted is None or admitted < self.service.settings.queue_size:
                return None
            wait = pipeline.estimated_wait_s()
        return Busy(f"voicemood is busy right now; please try again in about {wait:.0f} s.",
                    retry_after_s=wait)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/")
        if (scope["type"] != "http" or scope["method"] != "POST"
                or path not in (API_UPLOAD, PAGE_UPLOAD)):
            await self.app(scope, receive, send)
            return
        ceiling = self.limit + MULTIPART_SLACK
        declared = dict(scope["headers"]).get(b"content-length", b"")
        refusal: ApiError | None = None
        # What the API route's body may take: its declared length, or the limit when it
        # declares none (chunked; the route cuts it off there).
        need = min(int(declared), ceiling) if declared.isdigit() else ceiling
        if declared.isdigit() and int(declared) > ceiling:
            refusal = _too_large(self.limit)
        elif (busy := self._busy(path, need)) is not None:
            refusal = ApiError("busy", str(busy), headers={
                "Retry-After": str(max(1, math.ceil(busy.retry_after_s)))})
        if refusal is not None:
            log.info("upload to %s refused unread: %s", path, refusal.code)
            response = _error_response({"error": {"code": refusal.code,
                                                  "message": refusal.message}},
                                       refusal.headers)
            await response(scope, receive, send)
            return
        if path == API_UPLOAD:
            self.held += need
            try:
                await self.app(scope, receive, send)
            finally:
                self.held -= need
            return
        received = 0
        ended = False

        async def counted() -> Message:
            nonlocal received, ended
            message = await receive()
            if message["type"] == "http.disconnect" and not ended:
                raise _UploadAborted("the client disconnected before the upload ended")
            received += len(message.get("body", b""))
            ended = not message.get("more_body", False)
            if received > ceiling:
                raise _BodyTooLarge(f"File size exceeded maximum allowed size of "
                                    f"{human_bytes(self.limit)}.")
            return message

        await self.app(scope, counted, send)


def _error_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=STATUS.get(body["error"]["code"], 422),
                        headers=headers)


def build_api(service: AnalysisService, settings: Settings, access: Access) -> APIRouter:
    """The API routes over ``service``; ``access`` decides who the caller is."""
    router = APIRouter()
    limit = settings.max_audio_bytes

    async def caller(request: Request) -> str:
        """The history user of this request, or :class:`ApiError` ``unauthorized``."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            if access.check_token(header[7:].strip()):
                return LOCAL_USER if access.open else API_USER
        elif header and not access.open:
            creds = basic_credentials(header)
            address = request.client.host if request.client else ""
            try:
                if creds and await access.login(address, *creds):
                    return creds[0]
            except TooManyLogins as exc:
                raise ApiError("too_many_logins", str(exc),
                               headers={"Retry-After": str(exc.wait_s)}) from None
        elif access.open and access.api_token is None:
            return LOCAL_USER
        raise ApiError("unauthorized", "missing or wrong credentials: send "
                       "'Authorization: Bearer <VOICEMOOD_API_TOKEN>'"
                       + ("" if access.open else " or a web login as HTTP Basic"),
                       headers={"WWW-Authenticate": 'Bearer realm="voicemood"'
                                + ("" if access.open else ', Basic realm="voicemood"')})

    @router.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers and its models are loaded."""
        return {"status": "ok", "models": service.pipeline.models()}

    @router.post("/api/analyze")
    async def analyze(request: Request, store: bool = True) -> JSONResponse:
        """One audio file in multipart field ``file``: the ``analyze --json`` object."""
        user = await caller(request)
        name, audio = await _read_upload(request, limit)
        try:
            if store:
                sender = Sender(PLATFORM, user, user, uuid.uuid4().hex)
                analysis = await service.analyze(audio, sender)
            else:
                analysis = await service.analyze_bytes(audio)
        except Exception as exc:
            body = error_json(exc)
            if body["error"]["code"] == "internal":
                log.exception("analysis of an upload failed")
            headers = None
            if isinstance(exc, (Busy, Unavailable)):
                headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
            return _error_response({"file": name, **body}, headers)
        return JSONResponse({"file": name, **analysis.to_json()})

    @router.get("/api/history")
    async def history(request: Request, limit: str = "5") -> dict[str, Any]:
        """The caller's latest ``limit`` analyses, newest first."""
        user = await caller(request)
        try:
            n = int(limit)
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_HISTORY:
            raise ApiError("bad_request", f"limit must be a whole number from 1 to {MAX_HISTORY}")
        items = await service.history(PLATFORM, user, n)
        return {"user": user, "items": [history_item(a) for a in items]}

    @router.get("/api/trend")
    async def trend(request: Request, days: str = "7", lang: str = "en") -> dict[str, Any]:
        """The caller's ``/trend`` numbers and summary for the last ``days`` days."""
        report = await _trend(request, days, lang, chart=False)
        return trend_json(report)

    @router.get("/api/trend.png")
    async def trend_png(request: Request, days: str = "7", lang: str = "en") -> Response:
        """The trend chart; 404 ``no_chart`` while the period has too few notes."""
        report = await _trend(request, days, lang, chart=True)
        if report.png is None:
            return JSONResponse({"error": {"code": "no_chart", "message":
                                           "too few notes in this period for a chart"}},
                                status_code=404)
        return Response(report.png, media_type="image/png",
                        headers={"Cache-Control": "no-store"})

    async def _trend(request: Request, days: str, lang: str, *, chart: bool) -> TrendReport:
        user = await caller(request)
        try:
            n = parse_period(days)
        except ValueError:
            # parse_period's own message is bot wording ("Try /trend 7d…").
            raise ApiError("bad_request", f"days must be a period of 1 to {MAX_DAYS} days: "
                           f"a number of days (7), days (30d) or weeks (2w); got "
                           f"{days[:40]!r}") from None
        report = await service.trend(PLATFORM, user, n, lang)
        if not chart:
            report.png = None
        return report

    @router.api_route("/api/{rest:path}", include_in_schema=False,
                      methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    async def elsewhere(request: Request, rest: str) -> JSONResponse:
        """Any other ``/api/...`` request: 405 or 404 in the API's error shape.

        Without it the page, mounted at ``/``, answered Gradio's ``{"detail": "Not Found"}``.
        """
        path = "/api/" + rest
        allowed = API_METHODS.get(path)
        if allowed is not None:
            raise ApiError("method_not_allowed", f"{path} takes {allowed}, not "
                           f"{request.method}", headers={"Allow": allowed})
        raise ApiError("not_found", f"no API route {path}; the routes are "
                       + ", ".join(sorted(API_METHODS)))

    return router


def install_error_handlers(app: FastAPI) -> None:
    """Answer :class:`ApiError` as ``{"error": {"code", "message"}}``."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response({"error": {"code": exc.code, "message": exc.message}},
                               exc.headers)


async def _read_upload(request: Request, limit: int) -> tuple[str, bytes]:
    """The ``file`` part's name and bytes; refuses a body over ``limit`` (+ framing) early."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError("bad_request", "send the audio as multipart/form-data in field 'file'")
    declared = request.headers.get("content-length")
    ceiling = limit + MULTIPART_SLACK
    if declared is not None and declared.isdigit() and int(declared) > ceiling:
        raise _too_large(limit)
    received = 0
    receive = request.receive

    async def counted() -> dict[str, Any]:
        # Chunked bodies carry no length: count what actually arrives.
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > ceiling:
            raise _BodyTooLarge("body too large")
        return message

    bounded = Request(request.scope, receive=counted)
    try:
        async with bounded.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError("bad_request", "no file in multipart field 'file'")
            data = await upload.read(limit + 1)
            name = upload.filename or "upload"
    except HTTPException as exc:  # starlette turns parser errors into 400s
        if received > ceiling:
            raise _too_large(limit) from None
        raise ApiError("bad_request", f"malformed multipart body: {exc.detail}") from None
    if len(data) > limit:
        raise _too_large(limit)
    return name, data


def _too_large(limit: int) -> ApiError:
    # The size in the one wording every refusal uses (bot.wording.human_bytes).
    return ApiError("too_large", f"The file is larger than the limit of {human_bytes(limit)}.")


def history_item(a: Analysis) -> dict[str, Any]:
    """One stored analysis: ``created_at`` (ISO 8601, UTC) plus the ``analyze --json`` fields."""
    when = datetime.fromtimestamp(a.created_at, UTC).isoformat(timespec="seconds")
    return {"created_at": when, **a.to_json()}


def trend_json(r: TrendReport) -> dict[str, Any]:
    """The numbers behind ``/trend`` and its summary text."""
    def rnd(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "days": r.days,
        "start": r.start.isoformat(),
        "end": r.end.isoformat(),
        "tz": r.tz,
        "notes": r.notes,
        "previous_notes": r.previous_notes,
        "minutes": round(r.minutes, 2),
        "tag_shares": {k: round(v, 3) for k, v in r.tag_shares.items()},
        "mood": rnd(r.mood),
        "previous_mood": rnd(r.previous_mood),
        "direction": r.direction,
        "change": rnd(r.change),
        "top_voice": r.top_voice,
        "sustained_negative": r.sustained_negative,
        "daily": [{"date": d.date.isoformat(), "notes": d.notes, "mood": rnd(d.mood),
                   "counts": dict(d.counts)} for d in r.daily],
        "text": r.text,
    }
