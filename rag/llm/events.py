"""What a streamed LLM call tells its consumer, as typed records in order.

:func:`rag.llm.stream_answer` yields ``Waiting`` (the request went out), ``Token``s
(answer text as it may be shown: already checked and renumbered) and one ``Done``
carrying the :class:`Answer`. A face iterates over them; the callback functions
(``answer_llm(on_token=..., on_request=...)``) are thin wrappers over the same stream.
``Note`` is for the layers above (e.g. the pipeline's "answered offline because ...").
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

from rag.types import Answer


@dataclass(frozen=True)
class Waiting:
    """A request went to the model: the wait for its first token starts now."""


@dataclass(frozen=True)
class Token:
    """A piece of text to append to what was shown so far."""

    text: str


@dataclass(frozen=True)
class Note:
    """A remark for the user about how the answer came about."""

    text: str


@dataclass(frozen=True)
class Done:
    """The finished answer; its ``text`` is everything the Tokens added up to."""

    answer: Answer


Event = Waiting | Token | Note | Done

E = TypeVar("E")
R = TypeVar("R")


def drain(events: Generator[E, None, R], handle: Callable[[E], None]) -> R:
    """Feed every event to ``handle`` and return what the stream returned (its result).

    If ``handle`` raises, the stream is closed at once (its ``finally`` blocks run: the
    HTTP stream is closed), not when the traceback holding it is freed.
    """
    try:
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                return stop.value
            handle(event)
    finally:
        events.close()

