"""What every Telegram handler gets: PTB's context, plus the service and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from telegram import User
from telegram.ext import Application, CallbackContext, ExtBot

from bot import wording

if TYPE_CHECKING:
    from bot.core.service import AnalysisService
    from bot.ops.settings import Settings

PLATFORM = "telegram"


class VoicemoodContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any],
                                       dict[Any, Any]]):
    """The context handlers receive; ``bot_data`` is the one way they reach the service."""

    @property
    def service(self) -> AnalysisService:
        """The shared analysis service."""
        return self.bot_data["service"]

    @property
    def settings(self) -> Settings:
        """The running settings."""
        return self.bot_data["settings"]


def attach(app: Application[Any, Any, Any, Any, Any, Any], service: AnalysisService,
           settings: Settings) -> None:
    """Give the handlers of ``app`` the service and settings (through ``bot_data``)."""
    app.bot_data["service"] = service
    app.bot_data["settings"] = settings


def lang_of(user: User | None) -> str:
    """The reply language for ``user``: Chinese for a Chinese client, else English."""
    return wording.lang_of(user.language_code if user else None)
