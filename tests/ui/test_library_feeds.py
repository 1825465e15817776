"""The Library tab after `ask sync`: each feed's last sync and the new papers, inert."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rag" / "feeds"))
import pytest  # noqa: E402
from replay import Replay, hf_day, ok, paper  # noqa: E402


@pytest.fixture(scope="module")
def wordllama_embedder():
    from rag.embed import WordLlamaEmbedder

    return WordLlamaEmbedder()


def test_library_shows_last_sync_per_feed_and_new_papers(tmp_path, wordllama_embedder):
    from rag.feeds.plan import plan
    from rag.pipeline import Pipeline
    from rag.settings import Settings
    from ui import library_tab
    from ui.service import Service

    with Replay() as replay:
        hostile = {**paper(2), "title": "<script>alert(1)</script> \x1b[2J Paper"}
        replay.route("/api/daily_papers", "2025-08-01", ok(hf_day([paper(1), hostile])))
        settings = Settings(data_dir=tmp_path / "d", embedder="wordllama", _env_file=None,
                            hf_papers_url=f"{replay.url}/api/daily_papers")
        pipeline = Pipeline(settings, embedder=wordllama_embedder)
        svc = Service(pipeline)
        assert library_tab.feeds_html(svc) == ""  # before any sync: nothing shown
        pipeline.sync(plan(settings, "hf", [], since=dt.date(2025, 8, 1), days=None,
                           until=dt.date(2025, 8, 1), today=dt.date(2025, 8, 10)))
        html = library_tab.feeds_html(svc)
    assert "hf-daily: last sync" in html and "2 fetched, 2 added" in html
    assert "Paper 1: sparse attention study number 1" in html
    assert "<script>" not in html and "&lt;script&gt;" in html and "\x1b" not in html
