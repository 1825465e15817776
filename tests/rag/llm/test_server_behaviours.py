"""The LLM path against what real local servers (llama.cpp, Ollama) were seen to do.

No real server runs here: the stub (tests/rag/llm/openai_stub.py, real HTTP and SSE)
replays replies recorded from small local models (Qwen2.5-Coder 0.5B/1.5B on
llama-cpp-python): a marker followed by a cited claim, claims after the marker, a bare
"[1]", repeated markers; and their servers' behaviours: no usage chunk, ``: ping``
comments, a slow first token, slow headers, a stream cut or stalled mid-answer, a
generation that outlives its request, any model name answered.
"""

from __future__ import annotations

import time

import pytest
from helpers import free_port
from llm_helpers import KEY, llm_settings, streamed, token_text
from openai_stub import Reply

from rag.llm import CONDENSE_RULES, RULES, Done, Waiting
from rag.pipeline import Pipeline

GQSA_Q = ("Which paper combines group quantization with structured sparsity to speed up LLM "
          "inference?")
OFF_TOPIC_Q = "Does LoRA work better when A and B get different learning rates?"


def _pipeline(data_dir, stub, embedder, **overrides) -> Pipeline:
    return Pipeline(llm_settings(data_dir, stub, **overrides), embedder=embedder)


def _closest_text(ans) -> str:
    """Abstracta's own abstention text, naming the closest papers."""
    from rag.answer import abstain_text

    return abstain_text(list(ans.hits))


# --- abstention is a decision -----------------------------------------------------------

def test_marker_then_cited_claims_is_a_checked_answer(llm_pipeline, openai_stub):
    openai_stub.script("NOT IN SOURCES: GQSA combines group quantization with structured "
                       "sparsity [1][9]. It was developed by a team at a large GPU vendor.")
    events, ans = streamed(llm_pipeline, GQSA_Q)
    assert not ans.abstained and ans.supported
    assert ans.text.startswith("GQSA combines group quantization with structured sparsity [1].")
    assert "NOT IN SOURCES" not in ans.text and token_text(events) == ans.text
    assert ans.removed_citations == 1  # checked like any answer: [9] points nowhere
    assert ans.unsupported_sentences == ("It was developed by a team at a large GPU vendor.",)
    assert "still wrote cited claims" in ans.note
    assert ans.raw_reply.startswith("NOT IN SOURCES: GQSA")


def test_claims_after_the_marker_without_citation_are_flagged(llm_pipeline, openai_stub):
    claim = ("LoRA does not work better when the two low-rank matrices A and B get different "
             "learning rates.")
    openai_stub.script(f"NOT IN SOURCES: {claim}")
    ans = llm_pipeline.answer(OFF_TOPIC_Q)
    assert ans.abstained and ans.text == _closest_text(ans)
    assert claim not in ans.text  # never shown as if it were Abstracta's
    assert ans.unsupported_sentences == (claim,)
    assert "1 claim(s) citing no source; they are not shown" in ans.note


def test_marker_with_a_short_reason_abstains_without_flags(llm_pipeline, openai_stub):
    openai_stub.script("NOT IN SOURCES. The provided sources do not discuss learning rates "
                       "for LoRA.", "The sources do not answer this question.")
    for _ in range(2):  # with the marker, and the same reason without it
        ans = llm_pipeline.answer(OFF_TOPIC_Q)
        assert ans.abstained and ans.supported and ans.text == _closest_text(ans)
        assert not ans.unsupported_sentences and not ans.note


def test_only_a_citation_mark_is_unsupported(llm_pipeline, openai_stub):
    openai_stub.script("[1]", "[1].")
    for _ in range(2):
        ans = llm_pipeline.answer(GQSA_Q)
        assert not ans.abstained and not ans.supported
        assert "only citation marks" in ans.note


def test_every_repeated_marker_is_stripped(llm_pipeline, openai_stub):
    openai_stub.script("NOT IN SOURCES: " * 200,
                       "GQSA speeds up inference [1]. NOT IN SOURCES NOT IN SOURCES: "
                       "NOT IN THE SOURCES.")
    events, ans = streamed(llm_pipeline, GQSA_Q)
    assert ans.abstained and ans.text == _closest_text(ans) and "NOT IN" not in ans.text
    assert token_text(events) == ans.text
    events, ans = streamed(llm_pipeline, GQSA_Q)
    assert ans.text == "GQSA speeds up inference [1]." == token_text(events)
    assert not ans.abstained and ans.supported


@pytest.mark.parametrize("role", ["system", "merge"])
def test_system_role_shapes(bundled_dir, embedder, openai_stub, role):
    from rag.chat import Conversation

    pipe = _pipeline(bundled_dir, openai_stub, embedder, llm_system_role=role)
    conv = Conversation()
    openai_stub.script("GQSA combines quantization with sparsity [1].",
                       "How much faster is GQSA than 2:4 pruning?", "It is 1.5x faster [1].")
    pipe.answer(GQSA_Q, conversation=conv)
    pipe.answer("how much faster is it?", conversation=conv)
    requests = openai_stub.chat_requests
    assert len(requests) == 3  # the answer, the follow-up rewrite, the second answer
    for request, rules in zip(requests, (RULES, CONDENSE_RULES, RULES), strict=True):
        roles = [m["role"] for m in request.messages]
        first = request.messages[0]["content"]
        if role == "system":
            assert roles == ["system", "user"] and first == rules
        else:  # the rules open the one user message: a template without a system role keeps them
            assert roles == ["user"] and first.startswith(f"{rules}\n\n")
    answer_prompt = openai_stub.chat_requests[0].messages[-1]["content"]
    assert answer_prompt.endswith(f"Question: {GQSA_Q}") and '<source n="1">' in answer_prompt


# --- servers as they are ---------------------------------------------------------------

def test_stream_without_usage_gives_none(llm_pipeline, openai_stub):
    openai_stub.script(Reply(text="GQSA speeds up inference [1].", usage=False, ping_every=0.05,
                             chunk_delay=0.02))
    ans = llm_pipeline.answer(GQSA_Q)
    assert ans.text == "GQSA speeds up inference [1]." and ans.usage is None
    assert openai_stub.chat_requests[0].json["stream_options"] == {"include_usage": True}


def test_dropped_stream_says_so_and_answers_offline(llm_pipeline, openai_stub):
    openai_stub.script(Reply(text="GQSA combines group quantization with sparsity [1].",
                             drop_after=3))
    ans = llm_pipeline.answer(GQSA_Q)
    assert ans.answerer == "offline" and ans.citations[0].title.startswith("GQSA")
    assert f"the server {openai_stub.url} closed the stream after 3 tokens" in ans.note
    assert "cannot reach" not in ans.note
    assert len(openai_stub.chat_requests) == 1  # a generation that ran is not run again


@pytest.mark.parametrize("ping_every", [0.0, 0.5], ids=["silent", "pings"])
def test_slow_first_token_within_the_budget_answers(bundled_dir, embedder, openai_stub,
                                                    ping_every):
    # Prompt processing longer than the read timeout: the read timeout bounds silence
    # once the model writes; the wait for the first token is bounded by the budget.
    pipe = _pipeline(bundled_dir, openai_stub, embedder, llm_read_timeout=1.0, llm_budget=20)
    openai_stub.script(Reply(text="GQSA speeds up inference [1].", first_token_delay=3.0,
                             ping_every=ping_every))
    waits: list[float] = []
    t0 = time.monotonic()
    for event in pipe.stream(GQSA_Q):
        if isinstance(event, Waiting):
            waits.append(time.monotonic() - t0)
        elif isinstance(event, Done):
            ans = event.answer
    assert time.monotonic() - t0 >= 3.0
    assert ans.answerer.startswith("llm:") and ans.text == "GQSA speeds up inference [1]."
    assert len(waits) == 1 and waits[0] < 2.5  # told when the request went out
    assert len(openai_stub.chat_requests) == 1


def test_slow_headers_within_the_budget_answer(bundled_dir, embedder, openai_stub):
    # Ollama sends its headers with the first token: the wait for them is the budget too.
    pipe = _pipeline(bundled_dir, openai_stub, embedder, llm_read_timeout=1.0, llm_budget=20)
    openai_stub.script(Reply(text="GQSA speeds up inference [1].", delay=2.5))
    ans = pipe.answer(GQSA_Q)
    assert ans.answerer.startswith("llm:") and len(openai_stub.chat_requests) == 1


def test_the_budget_is_total(bundled_dir, embedder, openai_stub):
    pipe = _pipeline(bundled_dir, openai_stub, embedder, llm_read_timeout=1.0, llm_budget=2.0)
    openai_stub.script(Reply(text="a b c d e f g h i j k [1].", chunk_delay=0.5))
    t0 = time.monotonic()
    ans = pipe.answer(GQSA_Q)
    assert time.monotonic() - t0 < 4  # each chunk came within 1 s; the whole took too long
    assert ans.answerer == "offline"
    assert "within the 2 s budget (ABSTRACTA_LLM_BUDGET)" in ans.note and "tokens had " \
        "arrived" in ans.note


def test_silence_mid_answer_is_cut_by_the_read_timeout(bundled_dir, embedder, openai_stub):
    pipe = _pipeline(bundled_dir, openai_stub, embedder, llm_read_timeout=1.0, llm_budget=30)
    openai_stub.script(Reply(text="GQSA combines group quantization [1].", stall_after=2,
                             stall=10))
    t0 = time.monotonic()
    ans = pipe.answer(GQSA_Q)
    assert time.monotonic() - t0 < 5
    assert ans.answerer == "offline"
    assert "sent nothing for 1 s after 2 tokens (ABSTRACTA_LLM_READ_TIMEOUT)" in ans.note


def test_dead_server_fails_at_once_not_after_the_budget(bundled_dir, embedder):
    # Nothing listens on the port: the refused connection is not retried against a local
    # server, so the answer comes offline at once, not after the 300 s budget.
    from rag.settings import load_settings

    url = f"http://127.0.0.1:{free_port()}/v1"
    pipe = Pipeline(load_settings(data_dir=bundled_dir, openai_base_url=url,
                                  llm_connect_timeout=2.0, llm_budget=300), embedder=embedder)
    pipe.search(GQSA_Q)  # load the index first: time only the LLM
    t0 = time.monotonic()
    ans = pipe.answer(GQSA_Q)
    assert time.monotonic() - t0 < 2.0
    assert ans.answerer == "offline" and f"cannot reach {url}" in ans.note


def test_timed_out_generation_not_retried_against_a_local_server(bundled_dir, embedder,
                                                                  openai_stub):
    pipe = _pipeline(bundled_dir, openai_stub, embedder, llm_read_timeout=0.5, llm_budget=1.5,
                     llm_retries=2)
    openai_stub.script(*[Reply(delay=3, text="late [1].")] * 3)
    ans = pipe.answer(GQSA_Q)
    assert ans.answerer == "offline" and "1.5 s budget" in ans.note
    assert len(openai_stub.chat_requests) == 1  # the server is still working on it

    openai_stub.reset()
    asked = _pipeline(bundled_dir, openai_stub, embedder, llm_read_timeout=0.5,
                      llm_budget=1.5, llm_retries=2, llm_retry_timeouts=True)
    openai_stub.script(Reply(delay=3, text="late [1]."), "GQSA speeds up inference [1].")
    ans = asked.answer(GQSA_Q)
    assert ans.answerer.startswith("llm:") and len(openai_stub.chat_requests) == 2


def test_any_model_name_is_answered(bundled_dir, embedder, openai_stub):
    # llama-cpp-python serves the model it loaded under whatever name is asked for.
    pipe = _pipeline(bundled_dir, openai_stub, embedder,
                     llm_model="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    openai_stub.script("GQSA speeds up inference [1].")
    ans = pipe.answer(GQSA_Q)
    assert ans.answerer == "llm:qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" and ans.supported


# --- one client -------------------------------------------------------------------------

def test_one_client_factory_for_llm_embedder_and_judge(openai_stub):
    from eval.judge import Judge
    from rag.embed import OpenAIEmbedder
    from rag.errors import EmbedderError
    from rag.openai_server import PLACEHOLDER_KEY, openai_client
    from rag.settings import load_settings

    keyless = load_settings(openai_base_url=openai_stub.url, llm_connect_timeout=3.0,
                            llm_read_timeout=7.0)
    client = openai_client(keyless)
    assert client.max_retries == 0 and client.timeout.connect == 3.0
    assert client.timeout.read == 7.0
    with pytest.raises(EmbedderError):  # the stub has no /embeddings: only the request matters
        OpenAIEmbedder(keyless).embed_query("x")
    openai_stub.script('{"claims": []}')
    Judge(keyless).client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], max_tokens=5)
    paths = [r.path.rstrip("/") for r in openai_stub.requests]
    assert paths == ["/v1/embeddings", "/v1/chat/completions"]  # the embedder, then the judge
    auth = {r.headers.get("authorization") for r in openai_stub.requests}
    assert auth == {f"Bearer {PLACEHOLDER_KEY}"}  # one placeholder key everywhere
    keyed = load_settings(openai_base_url=openai_stub.url, openai_api_key=KEY)
    assert openai_client(keyed).api_key == KEY


@pytest.mark.parametrize("url, local", [
    ("http://127.0.0.1:8080/v1", True), ("http://localhost:11434/v1", True),
    ("http://192.168.1.20:8000/v1", True), ("http://gpu-box:8000/v1", True),
    ("http://[::1]:8080/v1", True), (None, False), ("https://api.example.com/v1", False),
])
def test_which_servers_count_as_local(url, local):
    """Local servers are not sent a timed-out generation again (by default)."""
    from rag.openai_server import is_local
    from rag.settings import load_settings

    settings = load_settings(openai_base_url=url, openai_api_key=KEY)
    assert is_local(settings) is local
