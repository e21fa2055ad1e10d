"""The web front end: a Gradio page and a JSON API on one server (see ``docs/web.md``).

:func:`serve_web` follows the ``serve_<name>(service, settings)`` shape of the bots;
:mod:`adapters.web.app` builds the page, :mod:`adapters.web.api` the JSON routes and
:mod:`adapters.web.auth` decides who may use them.
"""
