"""Building the core service with the pipeline this process should run.

The embedded default runs the models in this process (:class:`inference.pipeline.Pipeline`);
with ``VOICEMOOD_BROKER_URL`` the models run in ``voicemood worker`` processes and this
process only sends notes over Celery (:class:`workers.client.RemotePipeline`). The core
(:mod:`bot`) is handed one or the other and never imports :mod:`workers` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core.service import AnalysisService
from bot.ops.metrics import InstrumentedPipeline

if TYPE_CHECKING:
    from bot.ops.settings import Settings
    from inference.engine import InferenceEngine


async def open_service(settings: Settings,
                       engine: InferenceEngine | None = None) -> AnalysisService:
    """The analysis service for ``settings``: in-process models (sharing ``engine`` when
    given), or the Celery front end when ``VOICEMOOD_BROKER_URL`` is set."""
    pipeline = None
    if settings.broker_url:
        from workers.client import RemotePipeline

        pipeline = InstrumentedPipeline(RemotePipeline(settings))
    return await AnalysisService.create(settings, engine=engine, pipeline=pipeline)
