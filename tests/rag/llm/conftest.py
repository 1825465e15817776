"""Fixtures for LLM tests: an OpenAI-compatible stub server and pipelines pointed at it.

Other test folders can use the stub too (tests/conftest.py puts this folder on sys.path)::

    from openai_stub import Reply, StubOpenAI
"""

from __future__ import annotations

import pytest
from llm_helpers import llm_settings
from openai_stub import Reply, StubOpenAI

__all__ = ["Reply", "StubOpenAI"]


@pytest.fixture
def openai_stub():
    """A started :class:`StubOpenAI` (``.url``, ``.script(...)``, ``.requests``), closed after."""
    with StubOpenAI() as stub:
        yield stub


@pytest.fixture
def llm_pipeline(bundled_dir, embedder, openai_stub):
    """A Pipeline over the shared bundled index (read-only) whose LLM is the stub."""
    from rag.pipeline import Pipeline

    return Pipeline(llm_settings(bundled_dir, openai_stub), embedder=embedder)
