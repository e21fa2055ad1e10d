"""The note use-case and the analysis service every front end calls, with the value types
they pass around (:class:`~bot.analysis.Analysis`, :class:`~bot.analysis.Sender`)."""
