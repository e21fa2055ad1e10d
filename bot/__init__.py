"""Platform-free core of voicemood, grouped by what lives there:

- :mod:`bot.core`: the note use-case, the analysis service, intake checks;
- :mod:`bot.storage`: the one owner of the SQLite history (schema, migrations, repositories);
- :mod:`bot.journal`: export, weekly digest, privacy and retention;
- :mod:`bot.trend`: mood summaries and their chart;
- :mod:`bot.wording`: every user-facing phrase, in Chinese and English;
- :mod:`bot.ops`: settings, logs, metrics.

It imports neither :mod:`adapters` nor :mod:`workers` nor :mod:`app`.
"""

__version__ = "0.1.0"
