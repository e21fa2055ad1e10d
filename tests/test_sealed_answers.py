"""Answers cross Redis sealed to the front end's reply key.

The worker encrypts every answer (result or refusal) to the public half of the key the
request names; only the front end that made the key can read it. A request without a valid
key is malformed (its answer could only travel in the clear), and a front end refuses an
answer that is not sealed to its own key.
"""

from __future__ import annotations

import base64
import json

import pytest

from inference.errors import Busy
from workers.protocol import (
    MalformedAnswer,
    MalformedRequest,
    ReplyKey,
    Request,
    error_answer,
    read_answer,
    seal,
)

RESULT = {"result": {"transcript": "The meeting was moved to Thursday."}}


def test_a_sealed_answer_opens_with_its_key_and_shows_no_word_in_transit() -> None:
    key = ReplyKey()
    sealed = seal(RESULT, key.public)
    assert list(sealed) == ["sealed"]
    wire = json.dumps(sealed).encode()
    assert b"Thursday" not in wire and b"transcript" not in wire
    assert key.open(sealed) == RESULT


def test_another_front_ends_key_cannot_open_it() -> None:
    sealed = seal(RESULT, ReplyKey().public)
    with pytest.raises(MalformedAnswer, match="not sealed to this front end's key"):
        ReplyKey().open(sealed)


def test_an_altered_answer_is_refused() -> None:
    key = ReplyKey()
    raw = bytearray(base64.b64decode(seal(RESULT, key.public)["sealed"]))
    raw[-1] ^= 1
    with pytest.raises(MalformedAnswer):
        key.open({"sealed": base64.b64encode(bytes(raw)).decode()})


def test_an_answer_in_the_clear_is_refused() -> None:
    with pytest.raises(MalformedAnswer, match="not sealed"):
        read_answer(RESULT, ReplyKey())


def test_a_sealed_refusal_is_raised_as_the_same_error() -> None:
    key = ReplyKey()
    answer = seal(error_answer(Busy("busy", retry_after_s=12.0)), key.public)
    with pytest.raises(Busy) as raised:
        read_answer(answer, key)
    assert raised.value.code == "busy" and raised.value.retry_after_s == 12.0


@pytest.mark.parametrize("reply_key", [None, "", "not base64 %%", base64.b64encode(b"short")
                                       .decode(), 42])
def test_a_request_without_a_valid_reply_key_is_malformed(reply_key: object) -> None:
    data = Request(b"OggS", limits={}, lang=None, reply_key=ReplyKey().public).to_json()
    data["reply_key"] = reply_key
    with pytest.raises(MalformedRequest, match="reply_key"):
        Request.from_json(data)


def test_a_request_round_trips_with_its_key() -> None:
    key = ReplyKey().public
    request = Request(b"OggS audio", limits={"max_audio_seconds": 60.0}, lang="en",
                      reply_key=key)
    assert Request.from_json(request.to_json()) == request
