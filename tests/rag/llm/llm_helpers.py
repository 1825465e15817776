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


