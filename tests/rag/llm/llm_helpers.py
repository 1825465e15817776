"""Helpers for LLM tests (importable from test modules, unlike conftest.py)."""

from __future__ import annotations

KEY = "sk-test-SECRET123"


def llm_settings(data_dir, stub, **overrides):
    """Settings for a Pipeline that answers with the stub (fast retries, short timeouts)."""
    from rag.settings import load_settings

    values = dict(data_dir=data_dir, openai_base_url=stub.url, openai_api_key=KEY,
                  llm_connect_timeout=2.0, llm_read_timeout=5.0,
                  llm_budget=30.0, llm_retries=2)
    values.update(overrides)
    return load_settings(**values)




def streamed(pipeline, question: str, **options):
    """(the events before ``Done``, the answer ``Done`` carries): ``pipeline.stream`` run
    to its end, checking that it ends with exactly one ``Done``."""
    from rag.llm.events import Done

    events = list(pipeline.stream(question, **options))
    assert isinstance(events[-1], Done) and not any(isinstance(e, Done) for e in events[:-1])
    return events[:-1], events[-1].answer


def token_text(events) -> str:
    """What the ``Token`` events add up to."""
    from rag.llm.events import Token

    return "".join(e.text for e in events if isinstance(e, Token))
