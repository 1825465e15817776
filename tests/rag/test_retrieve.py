"""Retrieval: the right paper first, filters by source and date, k, date parsing."""

from __future__ import annotations

import json

import pytest
from helpers import run_ask

from rag.dates import parse_date
from rag.errors import QuestionError
from rag.identity import normalize_title
from rag.retrieve import (
    Filters,
    absent,
    clean_question_with_note,
    fused_order,
    load_calibration,
    rerank_pool,
    rrf,
    title_in_question,
)
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
    # Shown in order of relevance (the fused score only chose the candidates).
    assert all(a.relevance >= b.relevance for a, b in zip(hits, hits[1:], strict=False))


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


@pytest.mark.parametrize("filters", [
    Filters(sources=("001_",)), Filters(sources=("001_", "003_")),
    Filters(since="--07-01"), Filters(until="--07-11"),
    Filters(since="2024-07-01", until="2024-08-13", sources=("TXT",)),
])
def test_chroma_keeps_exactly_the_papers_the_filters_keep(bundled_pipeline, filters):
    """The filter runs in Chroma (a where on the stored dates and sources), and keeps
    the same papers as Filters.keeps on each paper record, papers listed in several
    files or on several dates included."""
    papers = bundled_pipeline.papers()
    assert any(len(p.sources) > 1 for p in papers) and any(len(p.dates) > 1 for p in papers)
    want = {p.paper_id for p in papers
            if filters.keeps_sources(p.sources) and filters.keeps_dates(p.dates)}
    got = bundled_pipeline.searcher().allowed(filters)
    assert got is not None and len(got) == len(set(got)) and set(got) == want
    assert 0 < len(want) < len(papers)


def test_a_source_that_matches_no_indexed_source_is_an_error(bundled_pipeline):
    with pytest.raises(QuestionError, match="No indexed source matches 'nosuchfile'"):
        bundled_pipeline.search("anything", filters=Filters(sources=("nosuchfile",)))


def test_a_date_range_that_matches_nothing_says_so(bundled_pipeline):
    """No hits, and a message naming the filter (not an empty list read as "nothing about
    that question")."""
    with pytest.raises(QuestionError, match="No indexed paper matches these filters: "
                                            "listed since --12-01"):
        bundled_pipeline.search("anything", filters=Filters(since="--12-01"))


@pytest.mark.parametrize("question", [
    "language models", "Which paper proposes GPipe?",
    "How do agents operate apps on mobile phones?", "tidal stream power forecasting"])
def test_k_only_cuts_the_ranking(bundled_pipeline, question):
    """The candidate depth does not depend on k: the top 10 at k=100 is the k=10 list."""
    top10 = bundled_pipeline.search(question, k=10)
    top100 = bundled_pipeline.search(question, k=100)
    assert len(top10) == 10 and len(top100) > 10
    assert [(h.paper.paper_id, h.relevance) for h in top100[:10]] == \
        [(h.paper.paper_id, h.relevance) for h in top10]
    assert bundled_pipeline.search(question, k=3) == top10[:3]


@pytest.mark.parametrize("question, title", [
    ("Which paper proposes GPipe?", "GPipe:"),
    ("Who proposed BigCodeBench?", "BigCodeBench:"),
    ("HiREST dataset", "Hierarchical Video-Moment Retrieval"),
])
def test_a_named_paper_comes_first_and_counts_as_relevant(bundled_pipeline, question, title):
    """Word forms do not matter ("proposes"), a name before a title's colon wins, and a
    paper that only BM25 finds (dense misses "HiREST") still reaches the re-rank."""
    hits = bundled_pipeline.search(question)
    assert hits[0].paper.title.startswith(title)
    assert hits[0].relevance >= bundled_pipeline.settings.abstain_threshold


def test_relevance_orders_the_shown_papers(bundled_pipeline):
    """The most relevant paper is never hidden behind a less relevant one at the top."""
    for q in ["Which benchmark runs agents on real computers across operating systems?",
              "group quantization structured sparsity LLM inference"]:
        hits = bundled_pipeline.search(q, k=5)
        assert hits[0].relevance == max(h.relevance for h in hits)


def test_absent_words_are_the_words_no_chunk_contains(bundled_pipeline):
    searcher = bundled_pipeline.searcher()
    found = {a.word: a for a in searcher.absent(
        "Which paper offloads optimizer states to NVMe for training?")}
    assert "NVMe" in found and found["NVMe"].distinctive  # as written, to be named
    assert not {"paper", "optimizer", "states", "training", "Which"} & set(found)
    assert absent("group quantization sparsity", searcher.lexical) == []
    assert absent("NVMe", None) == []  # no index yet: nothing to say


def test_rrf_worked_example():
    s = rrf([["A", "B"], ["C", "x", "A"]], [1.0, 1.0], k=60)
    assert round(s["A"], 5) == 0.03227 and round(s["B"], 5) == 0.01613
    assert round(s["C"], 5) == 0.01639
    assert fused_order(s, [["A", "B"], ["C", "x", "A"]])[:3] == ["A", "C", "B"]
    # Weights scale each list: BM25 weighted 2 puts its rank 1 ahead of dense's.
    w = rrf([["D"], ["L"]], [1.0, 2.0], k=60)
    assert fused_order(w, [["D"], ["L"]]) == ["L", "D"]


def test_a_tie_goes_to_the_better_single_rank():
    # P is 2nd in both lists (2/62); Q is 1st in one list only (1/61): P wins on the sum.
    # R and S are each 1st in one list only: the tie goes to the better best rank, then id.
    s = rrf([["R", "P"], ["S", "P"]], [1.0, 1.0], k=60)
    assert fused_order(s, [["R", "P"], ["S", "P"]]) == ["P", "R", "S"]


def test_each_retrievers_best_papers_reach_the_rerank():
    order = [f"p{i}" for i in range(40)] + ["lexical_only"]
    pool = rerank_pool(order, [order[:5], ["lexical_only", "p1"]], 20)
    assert pool[:20] == order[:20] and pool[-1] == "lexical_only" and len(pool) == 21


@pytest.mark.parametrize("title, question, named", [
    ("GPipe: Efficient Training of Giant Neural Networks", "Which paper proposes GPipe?", True),
    ("Programming Puzzles", "Which paper is Programming Puzzles?", False),  # < 3 words
    ("Efficient Controllable Multi-Task Architectures",
     "what are efficient controllable multi-task architectures", True),
    ("CO2: Efficient Distributed Training", "How much CO2 does training emit?", False),
    ("Summary", "Give me a summary", False),
])
def test_title_in_question(title, question, named):
    assert title_in_question(title, normalize_title(question)) is named


def test_calibration_is_loaded_per_embedder():
    cal = load_calibration("minilm")
    assert cal.fitted and cal.embedder == "minilm" and "cosine" in cal.coef
    assert load_calibration("wordllama").fitted
    missing = load_calibration("no-such-embedder")
    assert not missing.fitted and missing.coef == {"cosine": 11.07, "coverage": 5.79}
    # Stage 2: the question's unknown words lower the relevance of the same paper.
    feats = {"cosine": 0.6, "coverage": 0.8, "rr_dense": 1.0, "rr_lexical": 1.0}
    assert cal.relevance({**feats, "unknown_share": 0.3, "unknown_name": 1.0}) < \
        cal.relevance(feats)


def test_a_long_question_is_cut_with_a_note():
    text, note = clean_question_with_note(" ".join(f"w{i:04d}" for i in range(500)))
    assert len(text) == 2000 and "2,999 characters" in note and "2,000" in note
    assert clean_question_with_note("  short\tquestion ") == ("short question", "")
    with pytest.raises(QuestionError):
        clean_question_with_note(" ?! ")


def test_a_question_pasted_many_times_is_asked_once():
    """Repeats skew the embedding and every word count; escape sequences go whole."""
    q = "Which paper combines group quantization with structured sparsity?"
    assert clean_question_with_note((q + " ") * 1600) == (q, "")
    assert clean_question_with_note(q + " " + q + " " + q[:50]) == (q, "")
    assert clean_question_with_note("group\x1b[31m quantization\x07 now")[0] == (
        "group quantization now")
    assert clean_question_with_note("the the the model")[0] == "the the the model"


@pytest.mark.parametrize("text, want", [
    ("2024-08-13", "2024-08-13"), ("--08-13", "--08-13"), ("Aug 13", "--08-13"),
    ("August 3", "--08-03"), ("08-13", "--08-13"), ("Aug 13, 2024", "2024-08-13"),
])
def test_parse_date(text, want):
    assert parse_date(text) == want


@pytest.mark.parametrize("text", ["yesterday", "13/08/2024", "Foo 3", "",
                                  "2024-13-45", "2023-02-29", "--02-30", "Feb 30", "04-31"])
def test_parse_date_rejects_non_dates(text):
    with pytest.raises(ValueError) as err:
        parse_date(text)
    assert "\n" not in str(err.value)


def test_parse_date_accepts_a_yearless_leap_day():
    assert parse_date("--02-29") == "--02-29" and parse_date("2024-02-29") == "2024-02-29"


def test_yearless_and_dated_listings_compare_on_month_and_day():
    paper = StoredPaper("p", "T", "A", dates=("--08-13",), sources=("a.txt",))
    dated = StoredPaper("q", "T", "A", dates=("2023-08-13",), sources=("b.csv",))
    assert Filters(since="2024-08-01").keeps_dates(paper.dates)
    assert not Filters(since="--09-01").keeps_dates(paper.dates)
    assert Filters(until="--08-13").keeps_dates(dated.dates)
    assert not Filters(since="2024-01-01").keeps_dates(dated.dates)
    assert Filters(sources=("B.CSV",)).keeps_sources(dated.sources) and not Filters(
        sources=("a.txt",)).keeps_sources(dated.sources)


def test_ask_search_cli_ranks_and_filters(bundled_dir):
    env = {"ABSTRACTA_DATA_DIR": str(bundled_dir)}
    res = run_ask("search", "--json", "-k", "4", "--since", "Aug 13", "group quantization sparsity",
                  env=env)
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert len(hits) == 4 and hits[0]["title"].startswith("GQSA")
    assert all(h["url"].startswith("https://") for h in hits)
    assert all("--08-13" in h["dates"] for h in hits)
    res = run_ask("search", "--source", "001_", "-k", "2", "group quantization", env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("001_") >= 2 and "GQSA" not in res.stdout
    bad = run_ask("search", "--since", "someday", "x", env=env)
    assert bad.returncode != 0 and "someday" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_ask("search", "--since", "2024-13-45", "x", env=env)
    assert bad.returncode != 0 and "not a valid calendar date" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = run_ask("search", "--source", "nosuchfile", "x", env=env)
    assert bad.returncode != 0 and "No indexed source matches 'nosuchfile'" in bad.stderr
    assert "Traceback" not in bad.stderr
