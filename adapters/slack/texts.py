"""Lookup of the few Slack-only phrases, which live in :mod:`bot.wording`'s one catalogue."""

from __future__ import annotations

from bot.wording import text


def phrase(key: str, lang: str = "en", **params: object) -> str:
    """A Slack-only phrase (``slack.<key>`` in :mod:`bot.wording`'s catalogue) in the user's
    language."""
    return text(f"slack.{key}", lang, **params)


def commands(lang: str = "en") -> str:
    """The Slack command list for the help text (shown by ``/voicemood``)."""
    return text("slack.commands", lang)
