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
