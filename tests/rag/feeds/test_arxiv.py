"""arXiv's nightly RSS and its OAI-PMH backfill against the replay server, and the same
paper met in both arXiv and the daily listing."""

from __future__ import annotations

from feeds_helpers import stored, sync
from replay import busy, hf_day, oai, oai_no_records, ok, paper, rss

RSS = "/rss/cs.CL"
OAI = "/oai"
FRIDAY = "Fri, 08 Aug 2025 00:00:00 -0400"
XML = "application/rss+xml"


def test_rss_takes_new_and_cross_listed_papers_with_their_categories(pipeline, replay):
    items = [(paper(1), "new"), (paper(2), "cross"), (paper(3), "replace"),
             ({**paper(4), "abstract": ""}, "new")]
    replay.route(RSS, "", ok(rss("cs.CL", FRIDAY, items), XML, ETag='"n1"'))
    report = sync(pipeline, "arxiv", ["cs.CL"])
    assert (report.ingest.added, report.fetched) == (2, 3)  # the replacement is no record
    assert report.ingest.skipped == ["arxiv cs.CL 2025-08-08: item 4: 2508.00004 has no "
                                     "abstract; skipped"]
    one = stored(pipeline)["2508.00001"]
    assert one.sources == ("arxiv cs.CL 2025-08-08",) and one.dates == ("2025-08-08",)
    assert one.categories == "cs.CL cs.LG" and one.authors == "Author 1, Grace Hopper"
    assert one.abstract.startswith("We study sparse attention in setting 1.")


def test_rss_unchanged_feed_is_not_fetched_again(pipeline, replay):
    replay.route(RSS, "", ok(rss("cs.CL", FRIDAY, [(paper(1), "new")]), XML, ETag='"n1"'))
    sync(pipeline, "arxiv", ["cs.CL"])
    again = sync(pipeline, "arxiv", ["cs.CL"])
    assert (again.fetched, again.ingest.added, again.unchanged_pages) == (0, 0, 1)
    assert replay.requests(RSS)[-1]["headers"]["If-None-Match"] == '"n1"'
    # A server without validators serving the same night again: the date says it all.
    replay.route(RSS, "", ok(rss("cs.CL", FRIDAY, [(paper(1), "new")]), XML))
    assert sync(pipeline, "arxiv", ["cs.CL"]).fetched == 0


def test_rss_truncated_is_an_error_and_keeps_the_index(pipeline, replay):
    replay.route(RSS, "", ok(rss("cs.CL", FRIDAY, [(paper(1), "new")]), XML))
    sync(pipeline, "arxiv", ["cs.CL"])
    replay.route(RSS, "", ok(rss("cs.CL", "Mon, 11 Aug 2025 00:00:00 -0400",
                                 [(paper(2), "new")])[:-60], XML))
    report = sync(pipeline, "arxiv", ["cs.CL"])
    assert "not well-formed XML" in report.failures[0]
    assert set(stored(pipeline)) == {"2508.00001"}


def test_rss_of_a_day_without_announcements_is_empty_not_an_error(pipeline, replay):
    replay.route(RSS, "", ok(rss("cs.CL", "Sat, 09 Aug 2025 00:00:00 -0400", []), XML))
    report = sync(pipeline, "arxiv", ["cs.CL"])
    assert (report.fetched, report.failures, report.ingest.added) == (0, [], 0)
    assert pipeline.sync_status()["arxiv cs.CL"]["error"] == ""


def _three_pages(replay, duplicate: bool = True) -> set[str]:
    """An OAI-PMH backfill of cs over three resumption pages; the ids it should index (not
    2508.00007: created in 2023, its datestamp moved by a new version)."""
    stamp = "2025-08-04"
    other = {**paper(9), "categories": ["cs.CV"]}  # set=cs holds every cs category
    page1 = [(paper(1), stamp), (paper(2), stamp), (other, stamp)]
    page2 = [(paper(3), stamp), (paper(2), stamp) if duplicate else (paper(5), stamp),
             ({**paper(4), "abstract": ""}, stamp)]
    page3 = [(paper(6), "2025-08-05"), ({**paper(7), "created": "2023-01-09"}, "2025-08-05")]
    replay.route(OAI, "", ok(oai(page1, token="tok|1001", complete=7), "text/xml"))
    replay.route(OAI, "tok|1001", ok(oai(page2, token="tok|2002", complete=7, cursor=1001),
                                     "text/xml"))
    replay.route(OAI, "tok|2002", ok(oai(page3, complete=7, cursor=2002), "text/xml"))
    return {"2508.00001", "2508.00002", "2508.00003", "2508.00006"} | (
        set() if duplicate else {"2508.00005"})


def test_oai_backfill_over_three_resumption_pages_indexes_every_record_once(pipeline, replay):
    expected = _three_pages(replay)
    report = sync(pipeline, "arxiv", ["cs.CL"], days=7)
    assert set(stored(pipeline)) == expected
    assert (report.ingest.added, report.failures) == (4, [])
    assert report.ingest.skipped == ["arxiv cs.CL page 2: record 3: 2508.00004 has no "
                                     "abstract; skipped"]
    queries = [r["query"] for r in replay.requests(OAI)]
    assert queries == [
        {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs", "from": "2025-08-03",
         "until": "2025-08-09"},
        {"verb": "ListRecords", "resumptionToken": "tok|1001"},
        {"verb": "ListRecords", "resumptionToken": "tok|2002"}]
    two = stored(pipeline)["2508.00002"]
    assert two.sources == ("arxiv cs.CL 2025-08-04",)
    assert stored(pipeline)["2508.00001"].authors == "Author 1, Grace Hopper"
    # Synced through yesterday: the same backfill again asks nothing.
    again = sync(pipeline, "arxiv", ["cs.CL"], days=7)
    assert (again.fetched, len(replay.requests(OAI))) == (0, 3)


def test_oai_page_that_fails_mid_chain_keeps_what_came_and_retries_the_chain(pipeline, replay):
    expected = _three_pages(replay, duplicate=False)
    replay.route(OAI, "tok|2002", busy(503, "0"), ok("<OAI-PMH xmlns=\"http://www.open"),
                 ok(oai([(paper(6), "2025-08-05")], complete=7, cursor=2002), "text/xml"))
    report = sync(pipeline, "arxiv", ["cs.CL"], days=7)
    assert len(report.failures) == 1 and "page 3" in report.failures[0]
    assert set(stored(pipeline)) == expected - {"2508.00006"}  # pages 1 and 2 committed
    # The cursor did not move: the whole chain again, and the rest comes in.
    replay.route(OAI, "", ok(oai([(paper(1), "2025-08-04")], token="tok|2002"), "text/xml"))
    fixed = sync(pipeline, "arxiv", ["cs.CL"], days=7)
    assert fixed.failures == [] and set(stored(pipeline)) == expected


def test_oai_no_records_match_is_an_empty_range(pipeline, replay):
    replay.route(OAI, "", ok(oai_no_records(), "text/xml"))
    report = sync(pipeline, "arxiv", ["cs.CL", "cs.LG"], days=2)
    assert (report.fetched, report.failures) == (0, [])
    assert len(replay.requests(OAI)) == 1  # one chain for both categories of set cs
    assert sync(pipeline, "arxiv", ["cs.CL", "cs.LG"], days=2).fetched == 0
    assert len(replay.requests(OAI)) == 1


def test_the_same_paper_from_both_feeds_is_one_paper_with_both_listings(pipeline, replay):
    replay.route("/api/daily_papers", "2025-08-08", ok(hf_day([paper(1)])))
    replay.route(RSS, "", ok(rss("cs.CL", FRIDAY, [(paper(1), "new"), (paper(2), "new")]),
                             XML))
    sync(pipeline, "hf", since="2025-08-08", until="2025-08-08")
    report = sync(pipeline, "arxiv", ["cs.CL"])
    assert (report.ingest.added, report.ingest.updated) == (1, 1)
    one = stored(pipeline)["2508.00001"]
    assert one.sources == ("arxiv cs.CL 2025-08-08", "hf-daily 2025-08-08")
    assert one.categories == "cs.CL cs.LG"  # arXiv's categories join the listing's paper
    assert len(stored(pipeline)) == 2


def test_new_lists_synced_papers_newest_first_by_day_and_category(pipeline, replay):
    replay.route("/api/daily_papers", "2025-08-01", ok(hf_day([paper(1)])))
    replay.route("/api/daily_papers", "2025-08-03", ok(hf_day([paper(3)])))
    replay.route(RSS, "", ok(rss("cs.CL", FRIDAY, [(paper(2), "new")]), XML))
    sync(pipeline, "hf", since="2025-08-01", until="2025-08-03")
    sync(pipeline, "arxiv", ["cs.CL"])
    assert [p.paper_id for p in pipeline.new_papers()] == ["2508.00002", "2508.00003",
                                                          "2508.00001"]
    assert [p.paper_id for p in pipeline.new_papers(since="2025-08-02")] == [
        "2508.00002", "2508.00003"]
    assert [p.paper_id for p in pipeline.new_papers(categories=("cs",))] == ["2508.00002"]
    status = pipeline.sync_status()
    assert status["arxiv cs.CL"]["added"] == 1 and status["hf-daily"]["fetched"] == 2
