"""The UI with an LLM answerer (the OpenAI-compatible stub server): streaming, and one
user's slow LLM call not holding up another user's question."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from llm.llm_helpers import llm_settings
from llm.openai_stub import Reply, StubOpenAI

SLOW = "GQSA couples group quantization with structured sparsity for faster inference [1]."
FAST = "OSWorld is a benchmark of real computer tasks for multimodal agents [1]."


@pytest.fixture
def llm_app(bundled_dir, embedder, launch_app):
    """The UI over the shared bundled index, answering with the stub LLM: (url, stub)."""
    from rag.pipeline import Pipeline

    with StubOpenAI() as stub:
        settings = llm_settings(bundled_dir, stub)
        yield launch_app(settings, Pipeline(settings, embedder=embedder)), stub


def test_slow_llm_call_does_not_block_another_user(llm_app):
    from gradio_client import Client

    url, stub = llm_app
    words = SLOW.split(" ")
    stub.script(Reply(text=SLOW, chunks=[w + " " for w in words[:-1]] + [words[-1]],
                      chunk_delay=0.4), Reply(text=FAST))
    slow_client, fast_client = Client(url, verbose=False), Client(url, verbose=False)
    done = {}

    def ask(client, question, key):
        out = client.predict(question, 3, api_name="/ask")
        done[key] = time.perf_counter()
        return out

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(ask, slow_client,
                           "Which paper combines group quantization with structured sparsity?",
                           "slow")
        time.sleep(1.0)  # the slow answer is streaming by now
        fast = pool.submit(ask, fast_client, "What is the OSWorld benchmark?", "fast")
        slow_out, fast_out = slow.result(60), fast.result(60)
    assert fast_out["answer"].startswith("OSWorld is a benchmark")
    assert slow_out["answer"].startswith("GQSA couples")
    assert slow_out["answerer"].startswith("llm:") and fast_out["answerer"].startswith("llm:")
    assert done["fast"] < done["slow"]


def test_the_chat_counts_the_wait_for_the_first_token_then_streams(bundled_dir, embedder):
    from rag.pipeline import Pipeline
    from ui.chat_tab import respond
    from ui.service import Service
    from ui.side_panel import LLM

    with StubOpenAI() as stub:
        settings = llm_settings(bundled_dir, stub)
        svc = Service(Pipeline(settings, embedder=embedder))
        stub.script(Reply(chunks=["GQSA couples ", "quantization [1]."], first_token_delay=2.5))
        shown = [messages[-1]["content"] for messages, _, _ in
                 respond(svc, "Which paper combines group quantization with sparsity?", None,
                         3, "", "", [], LLM)]
    waits = [s for s in shown if "Waiting for the model" in s]
    # Counted while nothing arrives: the stream blocks on the socket, the page ticks.
    assert any("(0 s)" in s for s in waits) and any("(2 s)" in s for s in waits)
    streaming = shown.index(next(s for s in shown if "GQSA couples" in s))
    assert shown.index(waits[-1]) < streaming < len(shown) - 1
    assert "GQSA couples quantization" in shown[-1] and "Waiting" not in shown[-1]


def test_an_error_in_the_stream_is_one_line_on_the_page(bundled_dir, embedder):
    from rag.pipeline import Pipeline
    from ui.chat_tab import respond
    from ui.service import Service
    from ui.side_panel import LLM

    with StubOpenAI() as stub:
        svc = Service(Pipeline(llm_settings(bundled_dir, stub), embedder=embedder))
        stub.script(Reply(status=401))  # a rejected key is an error, not an offline answer
        *_, (messages, _, session) = respond(svc, "What is OSWorld?", None, 3, "", "", [], LLM)
    assert messages[-1]["content"].startswith('<div class="answer-error">')
    assert "rejected the API key" in messages[-1]["content"]
    assert session["messages"] == messages
