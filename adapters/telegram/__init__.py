"""Telegram front end on python-telegram-bot (v22, asyncio ``Application``).

It only translates: Telegram updates in, calls to :class:`bot.core.service.AnalysisService`,
Telegram messages out. All wording comes from :mod:`bot.wording` (plus the few
Telegram-only phrases in :mod:`adapters.telegram.texts`); all replies use parse mode HTML.
See ``docs/telegram.md`` for the operator's view.

* :mod:`~adapters.telegram.app` -- the Application, allow-list, error handler, retries and
  :func:`serve_telegram`.
* :mod:`~adapters.telegram.media` -- which messages hold a note; each goes to the one note
  use-case, :func:`bot.core.notes.handle`.
* :mod:`~adapters.telegram.notes` -- the note port: bounded download, replies, progress
  message, transcript file (live and after a restart alike).
* :mod:`~adapters.telegram.pending` -- notes an earlier run left pending, after a restart.
* :mod:`~adapters.telegram.commands` -- /help, /history, /trend, /forget.
* :mod:`~adapters.telegram.journal` -- /export, /digest (and its delivery), /privacy,
  /mood, on-demand groups (``TELEGRAM_GROUP_MODE``).
* :mod:`~adapters.telegram.replies` -- sending: splitting, private delivery from groups.

Updates are processed concurrently; the models run in the shared engine, so commands are
answered while notes are being analysed. The same message delivered twice is analysed,
stored and answered once. With ``TELEGRAM_ALLOWED_USERS`` set, everyone else gets a polite
refusal and nothing they send is downloaded, analysed or stored; a note of theirs that an
allowed person asks about with ``/mood`` is refused the same way.
"""

from adapters.telegram.app import build_application, serve_telegram

__all__ = ["build_application", "serve_telegram"]
