"""Conversations: history, and follow-up questions rewritten to stand alone.

Retrieval sees one question at a time, so "how much faster is it than 2:4
pruning?" must become a question that names its subject. With an LLM the model
rewrites it (:func:`rag.llm.condense`); offline, :func:`condense_offline` applies
a simple rule: a question that refers back (a pronoun such as "it"/"they"/"this",
or "the paper"/"that method") or is very short gets the titles of the papers
the previous answer cited appended as context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.types import Answer

_REFERS_BACK = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|the (paper|method|model|"
    r"approach|authors|work|study|technique|framework|system|dataset|benchmark)|"
    r"(this|that|the same) (one|paper|method|model|approach|work))\b", re.I)


@dataclass
class Turn:
    question: str
    answer: Answer


@dataclass
class Conversation:
    """The turns so far. One per CLI chat session or browser session, never shared."""

    turns: list[Turn] = field(default_factory=list)
    max_turns: int = 8

    def add(self, question: str, answer: Answer) -> None:
        self.turns.append(Turn(question, answer))
        del self.turns[:-self.max_turns]

    @property
    def last(self) -> Turn | None:
        return self.turns[-1] if self.turns else None


def needs_context(question: str) -> bool:
    return bool(_REFERS_BACK.search(question)) or len(question.split()) <= 4


def condense_offline(question: str, conversation: Conversation | None) -> str:
    """The follow-up with the previous turn's subject made explicit (or unchanged)."""
    if conversation is None or conversation.last is None or not needs_context(question):
        return question
    prev = conversation.last.answer
    titles = [c.title for c in prev.citations][:1]
    if not titles:
        return f"{question} (following up on: {conversation.last.question})"
    return f"{question} (about: {'; '.join(titles)})"
