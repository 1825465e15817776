"""Fixtures for the core tests (rag/): the wordllama embedder and a wordllama-built
copy of the bundled corpus. The root tests/conftest.py gives isolation, the
netguard, MiniLM and the shared bundled index; everything here builds on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rag_helpers import BUNDLED, BUNDLED_PAPERS


@pytest.fixture(scope="session")
def wordllama():
    """The wordllama embedder (fast; used where an index is built from scratch)."""
    from rag.embed import WordLlamaEmbedder

    return WordLlamaEmbedder()


@pytest.fixture(scope="session")
def wordllama_dir(tmp_path_factory, wordllama) -> Path:
    """A data dir with the bundled corpus ingested with wordllama, uninterrupted. Read-only.

    Chunks of 110 tokens (MiniLM's size, not wordllama's 400): four times the writes,
    which keeps the kill-and-resume tests' kill inside the write phase."""
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    data = tmp_path_factory.mktemp("wordllama") / "data"
    pipe = Pipeline(Settings(data_dir=data, embedder="wordllama", chunk_tokens=110, _env_file=None),
                    embedder=wordllama)
    report = pipe.ingest([BUNDLED])
    assert report.added == BUNDLED_PAPERS
    return data
