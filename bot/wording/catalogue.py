"""The one catalogue of user-facing phrases (``phrases.toml`` beside this module).

Every front end and feature looks its words up here by key: shared keys, ``error.<code>``
refusals, and ``telegram.*`` / ``slack.*`` for the few phrases only one platform says.
Loaded once, at first use; a missing key is a programming error and raises ``KeyError``.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files

#: The languages the catalogue speaks; anything else is answered in English.
LANGUAGES = ("en", "zh")


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """``{lang: {key: template}}`` as read from ``phrases.toml``."""
    data = files("bot.wording").joinpath("phrases.toml").read_bytes()
    return tomllib.loads(data.decode("utf-8"))


def template(key: str, lang: str) -> str:
    """The unformatted phrase ``key`` in ``lang`` (``"en"`` or ``"zh"``)."""
    return catalogue()[lang][key]


def has(key: str) -> bool:
    """Whether the catalogue has a phrase ``key``."""
    return key in catalogue()["en"]
