"""Scale-out mode: the Celery app, the analysis task and the front end's client.

``workers.celery`` makes the app, ``workers.tasks`` holds the one task a ``voicemood worker``
runs, ``workers.client.RemotePipeline`` is what a front end uses instead of the in-process
pipeline when ``VOICEMOOD_BROKER_URL`` is set.
"""
