"""The Celery app, configured from :class:`bot.ops.settings.Settings`.

Workers and front ends build it from the same settings, so the queue name, serializer and
Redis transport options always agree. ``celery -A workers.celery inspect ping`` and Flower
(``celery -A workers.celery flower``) find it here, reading the settings from the
environment like every ``voicemood`` command.
"""

from __future__ import annotations

import ssl
from typing import Any

from celery import Celery

from bot.ops.settings import Settings, get_settings

#: The one queue notes travel on; its length is the cluster's back-pressure signal.
QUEUE = "voicemood"
#: The Redis transport every app of ours uses (see :mod:`workers.transport`).
TRANSPORT = "workers.transport:Transport"
#: Seconds a result nobody reads stays in Redis (the front end reads one within a second of
#: its being stored, then deletes it).
RESULT_TTL_S = 300
#: Name of the analysis task, shared by sender and worker without importing the worker code.
ANALYZE_TASK = "voicemood.analyze"


class CeleryConfig:
    """Celery settings derived from voicemood's: an object for ``config_from_object``."""

    def __init__(self, settings: Settings) -> None:
        url = settings.broker_url or "redis://127.0.0.1:6379/0"
        self.broker_url = url
        # kombu's Redis transport with a channel that drops a malformed message instead of
        # ending the worker (workers/transport.py); the URL still says where Redis is.
        scheme = url.split("://", 1)[0]
        if scheme in ("redis", "rediss"):
            self.broker_transport = TRANSPORT
        if scheme == "rediss":
            # kombu turns TLS on from the scheme name only for its own transport, and then
            # without checking the certificate: ask for TLS, and a verified one.
            self.broker_use_ssl = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        # Results travel back through the same Redis: the front end waits for them.
        self.result_backend = url
        self.task_serializer = "json"
        self.result_serializer = "json"
        self.accept_content = ["json"]
        self.task_default_queue = QUEUE
        self.task_create_missing_queues = True
        # A note is acknowledged only once answered, and a worker holds one spare message
        # per thread: a worker that dies loses nothing, and idle workers get the next notes.
        self.task_acks_late = True
        self.task_reject_on_worker_lost = True
        self.worker_prefetch_multiplier = 1
        self.task_time_limit = settings.task_time_limit_s
        self.task_track_started = True
        # A result is the transcript. The front end deletes it as soon as it has read it;
        # one nobody reads (its front end died) goes by itself after RESULT_TTL_S. Arguments
        # are never copied into it (result_extended off).
        self.result_expires = RESULT_TTL_S
        self.result_extended = False
        # No task events: task-succeeded carries the result (the transcript) and every event
        # is published on Redis to any subscriber (Flower, or anyone with the URL). Worker
        # heartbeats still go out, so Flower and `celery inspect` see who is up.
        self.worker_send_task_events = False
        self.task_send_sent_event = False
        self.worker_hijack_root_logger = False
        self.broker_connection_retry_on_startup = True
        self.broker_connection_timeout = 2.0
        self.broker_transport_options: dict[str, Any] = {
            # Above the longest task (checked by Settings), or a slow note runs twice.
            "visibility_timeout": settings.broker_visibility_timeout_s,
            # Look for notes orphaned by a dead worker on every idle poll.
            "unacked_restore_throttle": 1,
            "socket_timeout": 5.0,
            "socket_connect_timeout": 2.0,
        }
        self.result_backend_transport_options = {
            "socket_timeout": 5.0,
            "socket_connect_timeout": 2.0,
            "retry_policy": {"timeout": 2.0},
        }
        self.redis_socket_timeout = 5.0
        self.redis_socket_connect_timeout = 2.0
        self.redis_backend_health_check_interval = 10
        # A publish while Redis is down fails within about a second instead of hanging:
        # the sender is told to try later.
        self.task_publish_retry = True
        self.task_publish_retry_policy = {
            "max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 0.5,
        }


def make_app(settings: Settings, *, worker: bool = False) -> Celery:
    """A Celery app for ``settings``; ``worker=True`` also registers the analysis task."""
    app = Celery("voicemood", include=["workers.tasks"] if worker else [])
    app.config_from_object(CeleryConfig(settings))
    return app


#: The worker-side app (``celery -A workers.celery``), configured from the environment.
app = make_app(get_settings(), worker=True)
