"""kombu's Redis transport, hardened so one malformed message cannot end a worker.

kombu's Redis channel pops a message with BRPOP and decodes it (the JSON envelope, then its
base64 body) inside the worker's event loop. A message that is not what it expects (raw
bytes, JSON that is no envelope, a body that is not base64) raises there, and Celery stops
the whole worker with ``CRITICAL ... Unrecoverable error``: anyone who can write one entry to
the ``voicemood`` list could stop every worker, one per message.

This channel catches exactly that decoding step: such a message was already taken off the
list by BRPOP and never reached the ``unacked`` hash, so dropping it loses nothing a
front end waits for. It is logged with one warning that names the queue and the error
type, never the message's bytes (they may be someone's audio). Messages that decode are
untouched: Celery itself answers a well-formed message it cannot use (unknown task, refused
content type) by logging and acknowledging it.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty

log = logging.getLogger(__name__)

#: What decoding a malformed message raises: JSONDecodeError, binascii.Error and
#: UnicodeDecodeError are ValueErrors; KeyError, TypeError and AttributeError come from an
#: envelope that is JSON but not an object with ``properties`` (a list, a string...).
MALFORMED = (ValueError, TypeError, KeyError, AttributeError)


class Channel(kombu_redis.Channel):
    """A Redis channel that drops, with a warning, a message it cannot decode."""

    def _brpop_read(self, **options: Any) -> bool:
        # The original pops, decodes and delivers in one method; its own ``finally`` resets
        # the poll state before an exception reaches here, so the next BRPOP starts as usual.
        try:
            return bool(super()._brpop_read(**options))
        except MALFORMED as exc:
            self._dropped(exc)
            return True  # a message was consumed: the poller carries on with the next one

    def _get(self, queue: str) -> Any:
        # The polling path (basic_get, a worker without the event loop) decodes the same way.
        try:
            return super()._get(queue)
        except MALFORMED as exc:
            self._dropped(exc)
            raise Empty() from None

    def _dropped(self, exc: BaseException) -> None:
        queues = ", ".join(repr(q) for q in self._active_queues) or "?"
        log.warning("dropped a malformed message from queue %s: %s (not a Celery message; "
                    "it is gone from Redis, its bytes are not logged)", queues,
                    type(exc).__name__)


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`; set by :mod:`workers.celery`."""

    Channel = Channel
