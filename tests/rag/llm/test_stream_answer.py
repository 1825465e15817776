"""The answer as an iterator of events (what a face consumes), against the stub over HTTP:
the LLM answerer's own stream, and ``Pipeline.stream`` (what the CLI and the UI iterate)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from llm_helpers import streamed, token_text
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


# --- Pipeline.stream: the events the faces consume ----------------------------------------

def _untimed(answer):
    """The answer without its timings (two runs never take the same milliseconds)."""
    return replace(answer, timings_ms={})


def test_offline_answer_is_one_token_then_done(bundled_pipeline):
    events = list(bundled_pipeline.stream(GQSA_Q))
    assert [type(e) for e in events] == [Token, Done]
    answer = events[1].answer
    assert events[0].text == answer.text and answer.answerer == "offline"
    assert answer.citations[0].title.startswith("GQSA") and answer.timings_ms["total"] > 0
    assert _untimed(answer) == _untimed(bundled_pipeline.answer(GQSA_Q))


def test_llm_answer_waits_then_streams_tokens_in_order(llm_pipeline, openai_stub):
    openai_stub.script(Reply(chunks=PIECES, chunk_delay=0.01), Reply(chunks=PIECES))
    events, answer = streamed(llm_pipeline, GQSA_Q)
    assert isinstance(events[0], Waiting) and len(events) >= 5
    assert all(isinstance(e, Token) for e in events[1:])
    assert token_text(events) == answer.text == \
        "Quantization and sparsity are combined [1]. It is fast [2]."
    assert answer.answerer == "llm:gpt-4.1-mini" and answer.removed_citations == 1
    assert _untimed(answer) == _untimed(llm_pipeline.answer(GQSA_Q))


def test_follow_up_waits_for_the_rewrite_before_the_answer_streams(llm_pipeline, openai_stub):
    from rag.chat import Conversation

    conv = Conversation()
    openai_stub.script("GQSA combines group quantization with structured sparsity [1].")
    llm_pipeline.answer(GQSA_Q, conversation=conv)
    rewrite = "How much faster is GQSA than 2:4 pruning?"
    openai_stub.script(Reply(text=rewrite, first_token_delay=1.0),
                       Reply(chunks=["GQSA is ", "faster [1]."]))
    seen: list[tuple[float, object]] = []
    t0 = time.monotonic()
    for event in llm_pipeline.stream("how much faster is it?", conversation=conv):
        seen.append((time.monotonic() - t0, event))
    kinds = [type(e) for _, e in seen]
    # The rewrite's request, then the answer's: a face shows the wait from the first one.
    assert kinds == [Waiting, Waiting, Token, Token, Done]
    assert seen[0][0] < 0.9  # told as the rewrite's request went out, not after its reply
    answer = seen[-1][1].answer
    assert answer.standalone_question == rewrite and answer.text == "GQSA is faster [1]."
    assert len(conv.turns) == 2 and conv.turns[-1].answer == answer


def test_stopping_early_leaves_the_conversation_as_it_was(llm_pipeline, openai_stub):
    from rag.chat import Conversation

    conv = Conversation()
    openai_stub.script(Reply(chunks=PIECES, chunk_delay=0.05))
    events = llm_pipeline.stream(GQSA_Q, conversation=conv)
    assert isinstance(next(events), Waiting) and isinstance(next(events), Token)
    events.close()
    assert conv.turns == []
