"""Retrieval: the right paper first, filters by source and date, k, date parsing."""

from __future__ import annotations

import json

import pytest
from helpers import run_ask

from rag.retrieve import Filters, parse_date
from rag.types import StoredPaper

KEYWORD_QUESTIONS = [
    ("group quantization structured sparsity LLM inference", "GQSA:"),
    ("GPipe pipeline parallelism giant neural networks", "GPipe:"),
    ("MPI code generation domain-specific language model", "MPIrigen:"),
    ("parallel tool invocation directed acyclic graph", "Divide-Then-Aggregate:"),
    ("multiplication in transformers", "Dissecting Multiplication in Transformers"),
]


@pytest.mark.parametrize("query, title", KEYWORD_QUESTIONS)
def test_keyword_question_ranks_the_right_paper_first(bundled_pipeline, query, title):
    hits = bundled_pipeline.search(query)
    assert hits[0].paper.title.startswith(title)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert len({h.paper.paper_id for h in hits}) == len(hits)  # one hit per paper
    assert hits[0].relevance >= 0.5
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_k_is_respected(bundled_pipeline):
    assert len(bundled_pipeline.search("language models", k=3)) == 3
    assert len(bundled_pipeline.search("language models", k=12)) == 12
    assert len(bundled_pipeline.search("language models")) == 5  # the default top_k


def test_source_filter_restricts_results(bundled_pipeline):
    hits = bundled_pipeline.search("group quantization sparsity", k=10,
                                   filters=Filters(sources=("001_",)))
    assert len(hits) == 10
    assert all(any("001_" in s for s in h.paper.sources) for h in hits)
    assert not any(h.paper.title.startswith("GQSA") for h in hits)


@pytest.mark.parametrize("since, until, allowed", [
    ("Aug 13", None, {"--08-13"}),
    (None, "Mar 11", {"--03-11"}),
    ("07-01", "2024-07-31", {"--07-11"}),
])
def test_date_filters_restrict_results(bundled_pipeline, since, until, allowed):
    filters = Filters(since=parse_date(since) if since else None,
                      until=parse_date(until) if until else None)
    hits = bundled_pipeline.search("language models reasoning", k=10, filters=filters)
    assert len(hits) == 10
    assert all(set(h.paper.dates) & allowed for h in hits)


def test_filter_that_matches_nothing_returns_no_hits(bundled_pipeline):
    assert bundled_pipeline.search("anything", filters=Filters(sources=("nosuchfile",))) == []


@pytest.mark.parametrize("text, want", [
    ("2024-08-13", "2024-08-13"), ("--08-13", "--08-13"), ("Aug 13", "--08-13"),
    ("August 3", "--08-03"), ("08-13", "--08-13"), ("Aug 13, 2024", "2024-08-13"),
])
def test_parse_date(text, want):
    assert parse_date(text) == want


@pytest.mark.parametrize("text", ["yesterday", "13/08/2024", "Foo 3", ""])
def test_parse_date_rejects_non_dates(text):
    with pytest.raises(ValueError):
        parse_date(text)


def test_yearless_and_dated_listings_compare_on_month_and_day():
    paper = StoredPaper("p", "T", "A", dates=("--08-13",), sources=("a.txt",))
    dated = StoredPaper("q", "T", "A", dates=("2023-08-13",), sources=("b.csv",))
    assert Filters(since="2024-08-01").keeps(paper)
    assert not Filters(since="--09-01").keeps(paper)
    assert Filters(until="--08-13").keeps(dated)
    assert not Filters(since="2024-01-01").keeps(dated)
    assert Filters(sources=("B.CSV",)).keeps(dated) and not Filters(sources=("a.txt",)).keeps(dated)


def test_ask_search_cli_ranks_and_filters(bundled_dir):
    env = {"ABSTRACTA_DATA_DIR": str(bundled_dir)}
    res = run_ask("search", "--json", "-k", "4", "--since", "Aug 13", "group quantization sparsity",
                  env=env)
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert len(hits) == 4 and hits[0]["title"].startswith("GQSA")
    assert all("--08-13" in h["dates"] for h in hits)
    res = run_ask("search", "--source", "001_", "-k", "2", "group quantization", env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("001_") >= 2 and "GQSA" not in res.stdout
    bad = run_ask("search", "--since", "someday", "x", env=env)
    assert bad.returncode != 0 and "someday" in bad.stderr and "Traceback" not in bad.stderr
