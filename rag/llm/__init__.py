"""The LLM answerer: any OpenAI-compatible chat server, streamed, cited, checked.

One job per module:

- :mod:`rag.llm.events`: what a stream tells its consumer (Waiting, Token, Note, Done);
- :mod:`rag.llm.transport`: one streamed chat request (retries, budget, watchdog);
- :mod:`rag.llm.watchdog`: cuts a stream that outlives the budget or falls silent;
- :mod:`rag.llm.failures`: failed or cut requests as :class:`LLMError` messages;
- :mod:`rag.llm.prompt`: the messages for answering and for condensing follow-ups;
- :mod:`rag.llm.reply`: reading the reply (NOT IN SOURCES, scratchpads, citations);
- :mod:`rag.llm.answer`: the answerer, as events (:func:`stream_answer`) or callbacks;
- :mod:`rag.llm.condense`: the follow-up rewriter.

The client itself comes from :mod:`rag.openai_server`, the one factory (the embedder
and the eval judge use it too); its names are re-exported here for existing callers.
Nothing here imports ``openai`` until a request is made.
"""

from __future__ import annotations

from rag.llm.answer import OnToken, answer_llm, stream_answer
from rag.llm.condense import CONDENSE_MAX_TOKENS, condense, stream_condense
from rag.llm.events import Done, Event, Note, Token, Waiting
from rag.llm.failures import llm_error
from rag.llm.prompt import (
    CONDENSE_RULES,
    MAX_SOURCE_CHARS,
    MAX_SOURCES,
    NOT_IN_SOURCES,
    RULES,
    build_messages,
    chat_messages,
    format_sources,
)
from rag.llm.reply import Decision, read_reply
from rag.llm.transport import OnRequest, Reply, ask_model, chat_events, stream_chat
from rag.openai_server import PLACEHOLDER_KEY, is_local, openai_client, scrub, where

__all__ = [
    "CONDENSE_MAX_TOKENS", "CONDENSE_RULES", "MAX_SOURCES", "MAX_SOURCE_CHARS",
    "NOT_IN_SOURCES", "PLACEHOLDER_KEY", "RULES",
    "Decision", "Done", "Event", "Note", "OnRequest", "OnToken", "Reply", "Token", "Waiting",
    "answer_llm", "ask_model", "build_messages", "chat_events", "chat_messages", "condense",
    "format_sources", "is_local", "llm_error", "openai_client", "read_reply", "scrub",
    "stream_answer", "stream_chat", "stream_condense", "where",
]
