"""Helpers for LLM tests (importable from test modules, unlike conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

KEY = "sk-test-SECRET123"


def llm_settings(data_dir, stub, **overrides):
    """Settings for a Pipeline that answers with the stub (fast retries, short timeout)."""
    from rag.settings import load_settings

    values = dict(data_dir=data_dir, openai_base_url=stub.url, openai_api_key=KEY,
                  llm_timeout=5.0, llm_retries=2)
    values.update(overrides)
    return load_settings(**values)


def run_ask(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 180):
    """Run the real `ask` CLI in a subprocess (as tests/conftest.py's run_ask: netguarded)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True,
                          text=True, env=full_env, input=input, timeout=timeout, cwd=os.getcwd())
