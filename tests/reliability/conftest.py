"""Fixtures for the reliability tests (the root tests/conftest.py isolates each test)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def wordllama_embedder():
    """The wordllama embedder (fast): for tests that build indexes from scratch."""
    from rag.embed import WordLlamaEmbedder

    return WordLlamaEmbedder()
