"""Helpers for the feed tests: running a sync in-process the way `ask sync` plans it."""

from __future__ import annotations

import datetime as dt

TODAY = dt.date(2025, 8, 10)  # the feeds' "today" in in-process tests (the CLI uses the clock)


def sync(pipeline, source=None, categories=(), *, since=None, until=None, days=None,
         today=TODAY):
    from rag.feeds.plan import plan

    feeds = plan(pipeline.settings, source, list(categories),
                 since=dt.date.fromisoformat(since) if since else None,
                 until=dt.date.fromisoformat(until) if until else None, days=days, today=today)
    return pipeline.sync(feeds)


def stored(pipeline) -> dict:
    """paper id -> StoredPaper, for every indexed paper."""
    return {p.paper_id: p for p in pipeline.papers()}


def feed_env(replay, **extra: str) -> dict[str, str]:
    """The environment an `ask` subprocess needs to sync from the replay server."""
    return {"ABSTRACTA_EMBEDDER": "wordllama", "ABSTRACTA_ARXIV_DELAY": "0",
            "ABSTRACTA_HF_PAPERS_URL": f"{replay.url}/api/daily_papers",
            "ABSTRACTA_ARXIV_RSS_URL": f"{replay.url}/rss",
            "ABSTRACTA_ARXIV_OAI_URL": f"{replay.url}/oai", **extra}
