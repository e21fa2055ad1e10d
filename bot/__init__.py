"""Platform-free core of voicemood: settings, analysis service, history, trends, wording, CLI."""

__version__ = "0.1.0"
