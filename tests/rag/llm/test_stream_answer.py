"""The answer as an iterator of events (what a face consumes), against the stub over HTTP."""

from __future__ import annotations

import pytest
from openai_stub import Reply

from rag.errors import LLMError
from rag.llm import Done, Token, Waiting, answer_llm, stream_answer, stream_condense

GQSA_Q = ("Which paper combines group quantization with structured sparsity to speed up LLM "
          "inference?")
PIECES = ["Quantization ", "and sparsity ", "are combined [", "3", "]. ", "It is fast ",
          "[1][", "8]", "."]


@pytest.fixture
def hits(llm_pipeline):
    return llm_pipeline.search(GQSA_Q)


def test_events_wait_then_tokens_in_order_then_done(llm_pipeline, openai_stub, hits):
    openai_stub.script(Reply(chunks=PIECES, chunk_delay=0.01))
    events = list(stream_answer(GQSA_Q, hits, llm_pipeline.settings, llm_pipeline.llm))
    assert isinstance(events[0], Waiting) and isinstance(events[-1], Done)
    tokens = [e.text for e in events[1:-1]]
    assert all(isinstance(e, Token) for e in events[1:-1]) and len(tokens) >= 4
    answer = events[-1].answer
    # Already checked while streaming: [3] became [1], [1] became [2], [8] was dropped.
    assert "".join(tokens) == answer.text == \
        "Quantization and sparsity are combined [1]. It is fast [2]."
    assert answer.removed_citations == 1 and answer.answerer == "llm:gpt-4.1-mini"


def test_done_carries_the_answer_the_callbacks_give(llm_pipeline, openai_stub, hits):
    settings, llm = llm_pipeline.settings, llm_pipeline.llm
    openai_stub.script(Reply(chunks=PIECES), Reply(chunks=PIECES))
    streamed = [e for e in stream_answer(GQSA_Q, hits, settings, llm) if isinstance(e, Done)]
    calls: list[str] = []
    tokens: list[str] = []
    answer = answer_llm(GQSA_Q, hits, settings, llm, on_token=tokens.append,
                        on_request=lambda: calls.append("request"))
    assert [d.answer for d in streamed] == [answer]
    assert calls == ["request"] and "".join(tokens) == answer.text
    assert openai_stub.chat_requests[0].json == openai_stub.chat_requests[1].json  # same prompt


def test_no_hits_abstains_without_a_request(llm_pipeline, openai_stub):
    events = list(stream_answer(GQSA_Q, [], llm_pipeline.settings, llm_pipeline.llm))
    assert [type(e) for e in events] == [Token, Done]
    assert events[0].text == events[1].answer.text and events[1].answer.abstained
    assert openai_stub.chat_requests == []


def test_failure_is_raised_by_the_iterator(llm_pipeline, openai_stub, hits):
    openai_stub.script(*[Reply(status=500)] * 3)  # llm_retries=2: three tries, all fail
    events = stream_answer(GQSA_Q, hits, llm_pipeline.settings, llm_pipeline.llm)
    assert isinstance(next(events), Waiting)
    with pytest.raises(LLMError, match="answered HTTP 500"):
        next(events)


def test_condense_as_events_returns_the_rewrite(llm_pipeline, openai_stub):
    from rag.chat import Conversation

    conv = Conversation()
    openai_stub.script("GQSA combines group quantization with structured sparsity [1].")
    llm_pipeline.answer(GQSA_Q, conversation=conv)
    rewrite = "How much faster is GQSA than 2:4 pruning?"
    openai_stub.script(rewrite)
    events = stream_condense("how much faster is it?", conv, llm_pipeline.settings,
                             llm_pipeline.llm)
    assert isinstance(next(events), Waiting)
    with pytest.raises(StopIteration) as stop:
        next(events)
    assert stop.value.value == rewrite
