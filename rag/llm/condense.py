"""Rewriting a follow-up into a standalone question with the LLM (retrieval sees one).

The rewrite is accepted only if it is a question about the conversation's subject;
otherwise :class:`LLMError`, and the pipeline's offline rule decides instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator

from rag.errors import LLMError
from rag.llm.events import Token, Waiting, drain
from rag.llm.prompt import condense_messages
from rag.llm.reply import THINK
from rag.llm.transport import OnRequest, chat_events
from rag.settings import Settings

CONDENSE_MAX_TOKENS = 120

_QUESTION_WORDS = frozenset("what which how who whom whose when where why is are was were do does "
                            "did can could should would will has have had much many".split())
_QUESTION_START = re.compile(r"(%s)\b" % "|".join(sorted(_QUESTION_WORDS)), re.I)


def condense(question: str, conversation, settings: Settings, llm, *,
             deadline: float | None = None, on_request: OnRequest | None = None) -> str:
    """The follow-up rewritten by the LLM into a standalone question (retrieval sees one);
    ``on_request`` is called as the request goes out."""
    def handle(event: Waiting | Token) -> None:
        if isinstance(event, Waiting) and on_request is not None:
            on_request()

    return drain(stream_condense(question, conversation, settings, llm, deadline=deadline),
                 handle)


def stream_condense(question: str, conversation, settings: Settings, llm, *,
                    deadline: float | None = None) -> Generator[Waiting | Token, None, str]:
    """:func:`condense` as events: ``Waiting`` as the request goes out, no Token (the
    rewrite is read whole, not shown); the standalone question is the generator's return
    value (``standalone = yield from stream_condense(...)``)."""
    if conversation is None or not conversation.turns:
        return question
    deadline = deadline if deadline is not None else time.monotonic() + settings.llm_budget
    events = chat_events(llm, settings, condense_messages(question, conversation, settings),
                         max_tokens=CONDENSE_MAX_TOKENS, deadline=deadline, temperature=0,
                         tokens=False)
    reply = yield from events
    return _standalone(reply.text, question, conversation)


def _standalone(text: str, question: str, conversation) -> str:
    """The rewrite in the model's reply, or :class:`LLMError` if it is unusable."""
    text = THINK.sub("", text).strip()
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(standalone question|question)\s*:\s*", "", line.strip(), flags=re.I)
    line = line.strip().strip("\"'`*").strip()
    if not line or len(line) > 500 or not _about_the_conversation(line, question, conversation):
        raise LLMError("the LLM gave no usable rewrite of the follow-up")
    return line


def _about_the_conversation(rewrite: str, question: str, conversation) -> bool:
    """Whether a rewrite is a question about the user's subject: question-shaped, and
    sharing a word with the follow-up or with the last turn (its question and the titles
    it cited). A 0.5B model rewrote "How many datasets and tasks does it cover?" as
    "FinBen, Democratizing LLMs, MMSearch, SciBench": a list of titles, not a question.
    """
    from rag.text import terms

    if not (rewrite.endswith("?") or _QUESTION_START.match(rewrite)):
        return False
    last = conversation.turns[-1]
    context = " ".join([question, last.question, *(c.title for c in last.answer.citations)])
    return bool((set(terms(rewrite)) & set(terms(context))) - _QUESTION_WORDS)
