"""Fixtures for the feed tests: the replay server, settings pointing every feed at it
(no arXiv spacing), and a pipeline on the shared wordllama embedder."""

from __future__ import annotations

import pytest
from replay import Replay


@pytest.fixture
def replay():
    with Replay() as server:
        yield server


@pytest.fixture
def feed_settings(tmp_path, replay):
    from rag.settings import Settings

    return Settings(data_dir=tmp_path / "data", embedder="wordllama", arxiv_delay=0,
                    hf_papers_url=f"{replay.url}/api/daily_papers",
                    arxiv_rss_url=f"{replay.url}/rss", arxiv_oai_url=f"{replay.url}/oai",
                    _env_file=None)


@pytest.fixture
def pipeline(feed_settings, wordllama):
    from rag.pipeline import Pipeline

    return Pipeline(feed_settings, embedder=wordllama)
