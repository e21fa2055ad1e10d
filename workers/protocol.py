"""What travels through the queue, in the JSON that Celery's default serializer carries.

A request is the audio (base64), the sender's input limits, a language hint and the front
end's reply key. An answer is either ``{"result": PipelineResult.to_json()}`` or
``{"error": {...}}`` for a refusal (:class:`~inference.errors.VoicemoodError`): refusals are
answers, so they come back as data and the front end raises the same class with the same
``code`` and attributes (``retry_after_s`` of :class:`~inference.errors.Busy`...) that the
in-process pipeline would have raised. Only unexpected faults travel as Celery task failures.

Answers cross Redis sealed: the worker encrypts each one to the public half of the front
end's :class:`ReplyKey` (libsodium's sealed box, through PyNaCl), so the transcript of a
note is never readable in Redis, in the result key, on the result channel or in Flower,
whoever reads them, a person with ``/privacy transcripts off`` included. The private half
never leaves the front end's memory; a new one is made at each start.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from inference.errors import VoicemoodError
from inference.pipeline import PipelineResult

#: The input limits a front end sends with each note (InferenceConfig field names).
LIMIT_FIELDS = ("max_audio_seconds", "max_audio_bytes", "decode_timeout_s")


@dataclass(frozen=True)
class Request:
    """One note for a worker."""

    audio: bytes
    limits: dict[str, float]
    lang: str | None = None
    #: The front end's public reply key (:attr:`ReplyKey.public`), base64: the answer is
    #: sealed to it.
    reply_key: str = ""

    def to_json(self) -> dict[str, Any]:
        """Task keyword arguments."""
        return {"audio_b64": base64.b64encode(self.audio).decode("ascii"),
                "limits": dict(self.limits), "lang": self.lang, "reply_key": self.reply_key}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        """Inverse of :meth:`to_json`; unknown limit names are dropped. Raises
        :class:`MalformedRequest` for arguments no front end of ours sends, a request
        without a valid reply key among them (its answer could only travel in the clear)."""
        audio_b64, limits, lang = data.get("audio_b64"), data.get("limits") or {}, data.get("lang")
        reply_key = data.get("reply_key")
        if not isinstance(reply_key, str) or not _is_public_key(reply_key):
            raise MalformedRequest("reply_key is not a public key")
        if not isinstance(audio_b64, str):
            raise MalformedRequest("audio_b64 is not a string")
        if not isinstance(limits, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in limits.values()):
            raise MalformedRequest("limits is not an object of numbers")
        if lang is not None and not isinstance(lang, str):
            raise MalformedRequest("lang is not a string")
        try:
            # validate=True: a stray character is an error, not silently skipped audio.
            audio = base64.b64decode(audio_b64, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedRequest("audio_b64 is not base64") from None
        return cls(audio=audio, limits={k: v for k, v in limits.items() if k in LIMIT_FIELDS},
                   lang=lang, reply_key=reply_key)


class MalformedRequest(ValueError):
    """Task arguments that no front end of ours sends: the task is rejected, not retried."""


def limits_of(config: Any) -> dict[str, float]:
    """The input limits of a settings or config object, as a request carries them."""
    return {name: getattr(config, name) for name in LIMIT_FIELDS}


def ok_answer(result: PipelineResult) -> dict[str, Any]:
    """The answer for an analysed note."""
    return {"result": result.to_json()}


def error_answer(exc: VoicemoodError) -> dict[str, Any]:
    """The answer for a refused note: class, code, message and simple attributes."""
    attrs = {k: v for k, v in vars(exc).items()
             if k != "code" and isinstance(v, (bool, int, float, str))}
    return {"error": {"type": type(exc).__name__, "code": exc.code, "message": exc.message,
                      "attrs": attrs}}


class ReplyKey:
    """A front end's key pair for answers: workers seal to :attr:`public`, and only this
    object (in this process's memory) can open what they send back."""

    def __init__(self) -> None:
        self._private = PrivateKey.generate()
        self._box = SealedBox(self._private)

    @property
    def public(self) -> str:
        """The public half, base64, as a request carries it."""
        return base64.b64encode(bytes(self._private.public_key)).decode("ascii")

    def open(self, sealed: dict[str, Any]) -> dict[str, Any]:
        """The answer inside a :func:`seal` envelope. Raises :class:`MalformedAnswer` for
        one that was not sealed to this key or was altered on the way."""
        try:
            plain = self._box.decrypt(base64.b64decode(str(sealed.get("sealed", "")),
                                                       validate=True))
            answer = json.loads(plain)
        except (CryptoError, binascii.Error, ValueError):
            raise MalformedAnswer("the answer was not sealed to this front end's key") from None
        if not isinstance(answer, dict):
            raise MalformedAnswer("the sealed answer is not an object")
        return answer


def seal(answer: dict[str, Any], reply_key: str) -> dict[str, Any]:
    """``answer`` encrypted to the front end's public ``reply_key``: what the task returns."""
    box = SealedBox(PublicKey(base64.b64decode(reply_key)))
    sealed = box.encrypt(json.dumps(answer, separators=(",", ":")).encode())
    return {"sealed": base64.b64encode(sealed).decode("ascii")}


class MalformedAnswer(ValueError):
    """A task's return value that no worker of ours sends to this front end."""


def _is_public_key(text: str) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == PublicKey.SIZE
    except (binascii.Error, ValueError):
        return False


def read_answer(answer: dict[str, Any], key: ReplyKey) -> PipelineResult:
    """The result in the sealed ``answer``, or raise the refusal it carries. An unsealed
    answer is refused (:class:`MalformedAnswer`): workers of ours never send one."""
    if not isinstance(answer, dict) or "sealed" not in answer:
        raise MalformedAnswer("the answer is not sealed")
    answer = key.open(answer)
    if "error" in answer:
        raise rebuild_error(answer["error"])
    return PipelineResult.from_json(answer["result"])


def rebuild_error(data: dict[str, Any]) -> VoicemoodError:
    """The exception an :func:`error_answer` describes: the same class where it is known
    here, else a :class:`VoicemoodError` with the same code (the reply follows the code)."""
    cls = _error_classes().get(str(data.get("type")), VoicemoodError)
    code = str(data.get("code") or cls.code)
    # Built without calling the class's __init__, whose keyword arguments differ per class;
    # message, code and attributes are set as the worker's instance had them.
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(data.get("message", "")))
    exc.code = code
    for key, value in (data.get("attrs") or {}).items():
        setattr(exc, key, value)
    return exc


def _error_classes() -> dict[str, type[VoicemoodError]]:
    found: dict[str, type[VoicemoodError]] = {}
    todo: list[type[VoicemoodError]] = [VoicemoodError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return found
