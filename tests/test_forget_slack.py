"""Slack's ``/voicemood forget`` for someone with a privacy choice and no analyses: it asks,
deletes the choice, and says so (it used to answer "I have nothing stored about you")."""

from __future__ import annotations

from adapters.slack import FORGET_YES
from tests.fake_slack import FakeSlack
from tests.test_slack import ALICE, Harness, fake, slack  # noqa: F401


async def test_forget_with_only_a_privacy_choice_asks_and_deletes_it(
        slack: Harness, fake: FakeSlack) -> None:  # noqa: F811
    service = slack.service
    await service.store.journal.set_keep_transcripts("slack", ALICE, False)

    ask = (await slack.command("/voicemood", "forget")).json()
    assert ask["text"] == ("This deletes everything I have stored about you (0 analyses). It "
                           "cannot be undone. Are you sure?")
    assert (await slack.click(FORGET_YES, response="yes")).status == 200
    (done,) = await slack.responses("yes")
    await slack.settle()
    assert done["text"] == "Done: 0 analyses deleted. Nothing about you is stored now."
    assert await service.holds_anything("slack", ALICE) is False

    again = (await slack.command("/voicemood", "forget")).json()
    assert again["text"] == "I have nothing stored about you."
