"""The polite client on its own, against the replay server: arXiv's spacing between
requests, Retry-After in both its forms, bounded retries."""

from __future__ import annotations

import pytest
from replay import busy, ok


def _client(feed_settings, waits, **changes):
    from rag.feeds.client import Client

    return Client(feed_settings.model_copy(update=changes), sleep=waits.append)


def test_requests_to_arxiv_are_spaced_as_configured(feed_settings, replay):
    replay.route("/rss/cs.CL", "", ok("<rss/>", "application/rss+xml"))
    waits: list[float] = []
    with _client(feed_settings, waits) as client:
        for _ in range(3):
            client.get(f"{replay.url}/rss/cs.CL", spacing=3.0)
    # The first request goes at once; each later one waits out the 3 s since the last.
    assert len(waits) == 2 and all(2.0 < w <= 3.0 for w in waits)


def test_retry_after_seconds_and_http_date_are_honoured(feed_settings, replay):
    replay.route("/a", "", busy(503, "7"), busy(429, "Wed, 21 Oct 2015 07:28:00 GMT"), ok("{}"))
    waits: list[float] = []
    with _client(feed_settings, waits) as client:
        assert client.get(f"{replay.url}/a").body == b"{}"
    assert waits == [7.0, 0.0]  # a date in the past: no wait


def test_retries_are_bounded(feed_settings, replay):
    from rag.errors import FeedError

    replay.route("/a", "", busy(503, "0"))
    waits: list[float] = []
    with _client(feed_settings, waits, feed_retries=2) as client, pytest.raises(FeedError) as err:
        client.get(f"{replay.url}/a")
    assert len(replay.log) == 3 and "answered HTTP 503 (busy)" in str(err.value)
