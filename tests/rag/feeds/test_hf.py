"""The Hugging Face daily papers feed against the replay server: what a user sees for
each day the API serves, well or badly. In-process (`Pipeline.sync`, as `ask sync`
runs it); the CLI's own bar tests are in test_sync_cli.py."""

from __future__ import annotations

import json

from feeds_helpers import stored, sync
from replay import busy, hf_day, html_error, ok, paper

API = "/api/daily_papers"


def test_each_day_is_one_request_and_every_listed_paper_is_indexed(pipeline, replay):
    replay.route(API, "2025-08-01", ok(hf_day([paper(1), paper(2)])))
    replay.route(API, "2025-08-02", ok(hf_day([paper(3)])))
    report = sync(pipeline, "hf", since="2025-08-01", until="2025-08-02")
    assert (report.fetched, report.ingest.added, report.failures) == (3, 3, [])
    assert [r["query"] for r in replay.requests(API)] == [
        {"date": "2025-08-01", "limit": "100"}, {"date": "2025-08-02", "limit": "100"}]
    papers = stored(pipeline)
    assert set(papers) == {"2508.00001", "2508.00002", "2508.00003"}
    one = papers["2508.00001"]
    assert one.sources == ("hf-daily 2025-08-01",) and one.dates == ("2025-08-01",)
    assert one.authors == "Author 1, Grace Hopper"
    assert "setting 1" in one.abstract
    # The User-Agent names Abstracta.
    assert "Abstracta" in replay.requests(API)[0]["headers"]["User-Agent"]
    # The page as served is kept under the data dir.
    raw = pipeline.settings.data_dir / "feeds" / "raw" / "hf-daily" / "2025-08-01.json"
    assert len(json.loads(raw.read_bytes())) == 2


def test_a_second_sync_fetches_nothing_old(pipeline, replay):
    replay.route(API, "*", ok(hf_day([paper(1)])))
    sync(pipeline, "hf", since="2025-08-01", until="2025-08-03")
    asked = len(replay.log)
    again = sync(pipeline, "hf", since="2025-08-01", until="2025-08-03")
    assert (again.fetched, again.ingest.added, len(replay.log)) == (0, 0, asked)
    # A plain `ask sync hf` (no --since) starts where the first sync began: still nothing old.
    assert sync(pipeline, "hf", until="2025-08-03").fetched == 0


def test_a_recent_day_is_asked_again_conditionally(pipeline, replay):
    """Today's listing still grows: it is fetched again next time, with its ETag; the
    server's 304 costs nothing."""
    replay.route(API, "2025-08-10", ok(hf_day([paper(1)]), ETag='"v1"'))
    first = sync(pipeline, "hf", since="2025-08-10")
    again = sync(pipeline, "hf", since="2025-08-10")
    assert (first.fetched, again.fetched, again.ingest.added) == (1, 0, 0)
    assert replay.requests(API)[-1]["headers"].get("If-None-Match") == '"v1"'
    # The day grows: the new paper comes in.
    replay.route(API, "2025-08-10", ok(hf_day([paper(1), paper(2)]), ETag='"v2"'))
    grown = sync(pipeline, "hf", since="2025-08-10")
    assert (grown.fetched, grown.ingest.added) == (2, 1)
    assert [p.paper_id for p in grown.new] == ["2508.00002"]


def test_busy_server_is_waited_for_as_it_asks(pipeline, replay):
    replay.route(API, "2025-08-01", busy(429, "0"), busy(503, "0"), ok(hf_day([paper(1)])))
    report = sync(pipeline, "hf", since="2025-08-01", until="2025-08-01")
    assert (report.ingest.added, report.failures) == (1, [])
    assert len(replay.requests(API)) == 3


def test_a_server_that_stays_busy_fails_that_day_only(pipeline, replay):
    replay.route(API, "2025-08-01", busy(503, "0"))
    replay.route(API, "2025-08-02", ok(hf_day([paper(2)])))
    report = sync(pipeline, "hf", since="2025-08-01", until="2025-08-02")
    assert report.ingest.added == 1
    assert len(report.failures) == 1 and "2025-08-01" in report.failures[0]
    assert "503" in report.failures[0]


def test_a_retry_after_longer_than_allowed_is_an_error_not_a_hang(pipeline, replay):
    replay.route(API, "2025-08-01", busy(503, "86400"))
    report = sync(pipeline, "hf", since="2025-08-01", until="2025-08-01")
    assert "asks to wait 86400 s" in report.failures[0]
    assert len(replay.requests(API)) == 1


def test_html_error_page_and_truncated_json_leave_their_day_unsynced(pipeline, replay):
    replay.route(API, "2025-08-01", ok(hf_day([paper(1)])))
    sync(pipeline, "hf", since="2025-08-01", until="2025-08-01")
    before = stored(pipeline)
    replay.route(API, "2025-08-02", html_error())
    replay.route(API, "2025-08-03", ok(hf_day([paper(3), paper(4)])[:-40]))
    replay.route(API, "2025-08-04", ok(hf_day([paper(5)])))
    report = sync(pipeline, "hf", since="2025-08-01", until="2025-08-04")
    assert len(report.failures) == 2
    html, truncated = report.failures
    assert "hf-daily 2025-08-02" in html and "HTML page where JSON was expected" in html
    assert "hf-daily 2025-08-03" in truncated and "not valid JSON" in truncated
    papers = stored(pipeline)
    assert set(before) <= set(papers) and "2508.00005" in papers  # nothing lost, day 4 in
    assert "2508.00003" not in papers
    # The server recovers: the next sync fetches exactly the two failed days.
    replay.route(API, "2025-08-02", ok(hf_day([paper(2)])))
    replay.route(API, "2025-08-03", ok(hf_day([paper(3), paper(4)])))
    asked = len(replay.log)
    fixed = sync(pipeline, "hf", until="2025-08-04")
    assert [r["query"]["date"] for r in replay.log[asked:]] == ["2025-08-02", "2025-08-03"]
    assert (fixed.ingest.added, fixed.failures) == (3, [])


def test_an_empty_day_is_synced_and_not_asked_again(pipeline, replay):
    replay.route(API, "2025-08-02", ok("[]"))
    report = sync(pipeline, "hf", since="2025-08-02", until="2025-08-02")
    assert (report.fetched, report.failures) == (0, [])
    sync(pipeline, "hf", since="2025-08-02", until="2025-08-02")
    assert len(replay.requests(API)) == 1


def test_a_paper_with_no_abstract_is_skipped_with_its_name(pipeline, replay):
    bare = {**paper(2), "abstract": ""}
    replay.route(API, "2025-08-01", ok(hf_day([paper(1), bare])))
    report = sync(pipeline, "hf", since="2025-08-01", until="2025-08-01")
    assert report.ingest.added == 1
    assert report.ingest.skipped == [
        "hf-daily 2025-08-01: entry 2: 2508.00002 'Paper 2: sparse attention study number 2' "
        "has no abstract; skipped"]


def test_a_paper_on_two_days_is_one_paper_with_both_listings(pipeline, replay):
    replay.route(API, "2025-08-01", ok(hf_day([paper(1)])))
    replay.route(API, "2025-08-02", ok(hf_day([paper(1), paper(2)])))
    report = sync(pipeline, "hf", since="2025-08-01", until="2025-08-02")
    assert (report.fetched, report.ingest.added) == (3, 2)
    one = stored(pipeline)["2508.00001"]
    assert one.sources == ("hf-daily 2025-08-01", "hf-daily 2025-08-02")
    assert one.dates == ("2025-08-01", "2025-08-02")
