"""The composition root: the ``voicemood`` command line and the wiring of ``serve``, ``web``
and ``worker``. The only package that imports :mod:`adapters` and :mod:`workers`; it builds
the pipeline (in-process or the Celery client) and hands it to the core service."""
