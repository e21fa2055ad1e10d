"""The one note use-case: a voice note from its delivery to its answer, for every front end.

:func:`handle` owns a delivery from start to end, the same for Telegram, Slack and the
restart sweep (:mod:`bot.core.pending`): the allow-list (on the note's *sender*, whoever
asked), the service's :meth:`claim` (new, answered before, or in hand elsewhere), the pending
record, the prechecks of :mod:`bot.core.intake`, the fetch, the analysis (stored as the
person chose, by the service), the reply (long transcripts cut at sentence ends or sent as a
``.txt``, :mod:`bot.core.long_reply`), refusals (:func:`bot.wording.error_reply`), the
"transcribing…" notice, and completing the pending record.

A platform only implements :class:`NotePort` for one delivery: fetch the bytes, send a text,
an analysis (pieces and perhaps a file) and a notice, in its markup and message limit.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot import wording
from bot.analysis import Analysis, Sender
from bot.core.intake import precheck
from bot.core.long_reply import LongReply, Measure, fit_reply
from inference.errors import Busy, Unavailable, VoicemoodError

if TYPE_CHECKING:
    from bot.core.service import AnalysisService, Claim
    from bot.ops.settings import Settings
    from bot.wording import Markup

log = logging.getLogger(__name__)

#: A note the platform announces at least this long gets the "transcribing…" notice at once.
ANNOUNCE_LONG_NOTE_S = 15.0
#: Any other gets it when its analysis is not done after this long (seconds), on platforms
#: that show no "typing…" of their own while the bot works.
PROGRESS_AFTER_S = 3.0


def is_allowed(settings: Settings, platform: str, user_id: str | int) -> bool:
    """Whether the operator lets ``user_id`` of ``platform`` use the bot (Telegram:
    ``TELEGRAM_ALLOWED_USERS``, empty for everyone; other platforms have no list)."""
    if platform != "telegram":
        return True
    allowed = settings.telegram_allowed_ids
    try:
        return not allowed or int(user_id) in allowed
    except ValueError:
        return False


@dataclass(frozen=True)
class Note:
    """One note as the platform announced it.

    ``sender`` is the platform's identity of who sent it and where (chat, message);
    ``requester`` the one who asked for it to be analysed, when that is someone else
    (``/mood`` on another person's note, Slack's message shortcut). ``ref`` is what the
    port needs to fetch it again, also after a restart (it is recorded as pending).
    ``lang`` is the language of notices and refusals.
    """

    sender: Sender
    ref: dict[str, Any] = field(default_factory=dict)
    lang: str = "en"
    size: int | None = None
    duration_s: float | None = None
    requester: str | None = None


@dataclass(frozen=True)
class Delivery:
    """How a delivery wants repeats answered.

    ``repeat_stored``: a note answered before is answered again from the history (someone
    asked for it, or shared the same file in a new message); otherwise it stays silent.
    ``wait_in_flight``: a note being analysed elsewhere right now is answered once that
    analysis is ready (``/mood``); otherwise the port's :meth:`~NotePort.in_hand` is told.
    ``resuming``: the restart sweep; a note a live delivery answered meanwhile is left
    alone, and busy models or unreachable workers raise (the sweep tries again later).
    """

    repeat_stored: bool = False
    wait_in_flight: bool = False
    progress_after_s: float = PROGRESS_AFTER_S
    resuming: bool = False


class NotePort(Protocol):
    """What a platform does for one delivery: its answers go where the note is."""

    #: ``"html"`` (Telegram) or ``"mrkdwn"`` (Slack).
    markup: Markup
    #: The longest message, in :meth:`measure`'s units.
    message_limit: int
    #: The platform's own cap on downloads (bytes), if it has one.
    download_limit: int | None
    #: Whether the platform shows "typing…" while :meth:`typing` runs (then a short note
    #: needs no notice).
    shows_typing: bool
    #: Whether an analysis is answered in the language that was spoken (not ``note.lang``).
    answers_in_spoken_language: bool

    def measure(self, text: str) -> int:
        """The length of ``text`` as the platform counts it."""

    async def fetch(self, note: Note) -> bytes:
        """The note's bytes (bounded); raises an InputError such as DownloadFailed."""

    async def send(self, text: str, *, edit: Any = None) -> None:
        """A refusal or phrase where the note is (replacing the notice ``edit``, if any)."""

    async def send_analysis(self, reply: LongReply, *, again: bool, edit: Any = None) -> None:
        """The analysis: ``reply.messages`` in order, then the transcript file if set.
        ``again``: answered from the history, not just analysed."""

    async def notice(self, text: str) -> Any:
        """The "transcribing…" notice; returns a handle :meth:`send` may edit."""

    async def withdraw(self, notice: Any) -> None:
        """Take back a notice that no answer will replace."""

    async def in_hand(self) -> None:
        """Tell whoever asked that the note is being analysed elsewhere right now."""

    async def typing(self) -> None:
        """Show that the bot is working, until cancelled (or return at once)."""


async def handle(service: AnalysisService, note: Note, port: NotePort,
                 delivery: Delivery = Delivery()) -> str:
    """Answer one delivery of ``note`` through ``port``, exactly once across redeliveries.

    Returns what happened: ``"answered"``, ``"refused"`` (a refusal was the answer),
    ``"in_hand"`` (left to another handler, or answered before) or ``"not_allowed"``.
    """
    settings = service.settings
    pending = service.store.pending
    if not is_allowed(settings, note.sender.platform, note.sender.user_id):
        # Before the claim and the fetch: nothing of theirs is downloaded or stored.
        log.info("refused a note of %s user %s (not on the allow-list)",
                 note.sender.platform, note.sender.user_id)
        asked_by_sender = note.requester in (None, str(note.sender.user_id))
        key = "not_allowed" if asked_by_sender else "sender_not_allowed"
        await port.send(wording.escape(wording.text(key, note.lang), port.markup))
        await pending.complete(note.sender)
        return "not_allowed"
    async with service.claim(note.sender) as claim:
        if claim.in_flight:
            stored = await claim.settled() if delivery.wait_in_flight else None
            if stored is not None:
                await _send_analysis(port, note, stored, again=True)
                return "answered"
            log.info("%s note %s is in hand elsewhere: not answering it twice",
                     note.sender.platform, note.sender.message_id)
            await port.in_hand()
            return "in_hand"
        if delivery.resuming and await pending.get(note.sender) is None:
            return "in_hand"  # a live delivery answered it while the sweep waited
        if claim.handled_before and not delivery.repeat_stored:
            log.info("%s note %s was answered before: not answering again",
                     note.sender.platform, note.sender.message_id)
            await pending.complete(note.sender)
            return "in_hand"
        if claim.stored is not None:
            await _send_analysis(port, note, claim.stored, again=True)
            await pending.complete(note.sender)
            return "answered"
        # Recorded before any work: if the process dies from here on, the next start
        # answers the note (bot.core.pending). A second record of the same note is a no-op.
        await pending.record(note.sender, note.ref, note.lang)
        outcome, notice = await _outcome(claim, note, port, settings, delivery)
        await _answer(port, note, outcome, notice, settings)
        await pending.complete(note.sender)
    return "refused" if isinstance(outcome, BaseException) else "answered"


async def _outcome(claim: Claim, note: Note, port: NotePort, settings: Settings,
                   delivery: Delivery) -> tuple[Analysis | BaseException, Any]:
    """The analysis of the note, or the refusal that is its answer; and the notice sent."""
    refusal = precheck(note.size, note.duration_s, settings, download_limit=port.download_limit)
    if refusal is not None:
        return refusal, None
    typing = asyncio.create_task(port.typing())
    job = asyncio.ensure_future(_fetch_and_analyse(claim, note, port))
    notice = None
    try:
        if note.duration_s is not None and note.duration_s >= ANNOUNCE_LONG_NOTE_S:
            notice = await port.notice(_progress_text(note, port.markup))
        elif not port.shows_typing:
            done, _ = await asyncio.wait({job}, timeout=delivery.progress_after_s)
            if not done:
                notice = await port.notice(_progress_text(note, port.markup))
        return await job, notice
    except (Busy, Unavailable) as exc:
        if delivery.resuming:  # no answer yet: the sweep tries again
            await port.withdraw(notice)
            raise
        return exc, notice
    except VoicemoodError as exc:
        log.info("refused a %s note from user %s: %s", note.sender.platform,
                 note.sender.user_id, exc.code)
        return exc, notice
    except Exception as exc:
        if delivery.resuming:  # stays pending; the attempt limit ends a note that keeps failing
            await port.withdraw(notice)
            raise
        # The user gets an apology; the operator the traceback.
        log.error("analysing a %s note from user %s failed", note.sender.platform,
                  note.sender.user_id, exc_info=exc)
        return exc, notice
    finally:
        typing.cancel()
        if not job.done():
            job.cancel()


async def _fetch_and_analyse(claim: Claim, note: Note, port: NotePort) -> Analysis:
    return await claim.analyze(await port.fetch(note))


def _progress_text(note: Note, markup: Markup) -> str:
    if note.duration_s:
        text = wording.text("working", note.lang, seconds=round(note.duration_s))
    else:
        text = wording.text("working_unknown", note.lang)
    return wording.escape(text, markup)


async def _answer(port: NotePort, note: Note, outcome: Analysis | BaseException, notice: Any,
                  settings: Settings) -> None:
    if isinstance(outcome, BaseException):
        await port.send(wording.error_reply(outcome, note.lang, settings, port.markup),
                        edit=notice)
        return
    if outcome.duplicate:  # another process answered it meanwhile: say nothing twice
        await port.withdraw(notice)
        return
    log.info("analysed a %s note (%.1f s) from user %s in chat %s: %s", note.sender.platform,
             outcome.duration_s, note.sender.user_id, note.sender.chat_id, outcome.label)
    await _send_analysis(port, note, outcome, again=False, notice=notice)


async def _send_analysis(port: NotePort, note: Note, analysis: Analysis, *, again: bool,
                         notice: Any = None) -> None:
    lang = wording.lang_of(analysis.language) if port.answers_in_spoken_language else note.lang
    reply = fit_reply(analysis, lang, port.markup, port.message_limit, port.measure)
    await port.send_analysis(reply, again=again, edit=notice)


async def record(service: AnalysisService, note: Note) -> bool:
    """Put ``note`` on record as pending before the platform is acknowledged (Slack acks
    before the work starts); :func:`handle` completes it. False if it was on record."""
    return await service.store.pending.record(note.sender, note.ref, note.lang)


__all__ = ["ANNOUNCE_LONG_NOTE_S", "PROGRESS_AFTER_S", "Delivery", "LongReply", "Measure",
           "Note", "NotePort", "handle", "is_allowed", "record"]
