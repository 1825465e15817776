"""The Searcher: one per index generation, one generation check per question, retrievers
that declare their features (a new one is a class and a line), eval's view of it."""

from __future__ import annotations

from dataclasses import replace

from rag.chat import Conversation
from rag.retrieve import Filters, Ranking, Searcher

GQSA = "Which paper combines group quantization with structured sparsity to speed up LLM inference?"


class Pinned:
    """A toy retriever, defined only here: it always ranks one chosen paper first (an
    editor's pick), and says so in its one feature."""

    name = "pinned"
    FEATURES = ("pinned",)

    def __init__(self, paper_id: str):
        self.paper_id = paper_id

    def rank(self, query, depth, allowed):
        keep = allowed is None or self.paper_id in allowed
        return Ranking(self.name, [self.paper_id] if keep else [], {self.paper_id: 1.0})

    def features(self, query, ranking, papers):
        return {pid: {"pinned": 1.0 if pid in ranking.scores else 0.0} for pid in papers}

    def shown(self, ranking, pid, feats):
        return {}


def _with_pinned(base: Searcher, paper_id: str, calibration=None) -> Searcher:
    return Searcher(base.settings, base.store, base.embedder, lexical=base.lexical,
                    facets=base.facets, evidence=base.evidence,
                    calibration=calibration or base.calibration,
                    retrievers=[*base.retrievers, (Pinned(paper_id), 1.0)])  # the one line


def _unrelated_paper(pipeline) -> str:
    """A paper that neither built-in retriever puts among GQSA's candidates."""
    base = pipeline.searcher()
    seen = {c.paper.paper_id for c in base.candidates(GQSA)}
    return next(p.paper_id for p in pipeline.papers() if p.paper_id not in seen)


def test_a_new_retriever_is_fused_and_its_feature_reaches_relevance(bundled_pipeline):
    base = bundled_pipeline.searcher()
    pick = _unrelated_paper(bundled_pipeline)
    searcher = _with_pinned(base, pick)
    assert set(searcher.feature_names) == {*base.feature_names, "pinned"}
    assert "pinned" in searcher.paper_features and "pinned" not in base.feature_names
    # Fused: its first paper reaches the re-rank pool, with every declared feature.
    candidates = searcher.candidates(GQSA)
    by_id = {c.paper.paper_id: c for c in candidates}
    assert pick in by_id and by_id[pick].features["pinned"] == 1.0
    assert all(set(c.features) == set(searcher.feature_names) for c in candidates)
    assert sum(c.features["pinned"] for c in candidates) == 1.0
    assert searcher.rankings(GQSA, 20)["pinned"] == [pick]
    # Uncalibrated, the feature leaves relevance as it was: the same first paper.
    assert searcher.search(GQSA, k=1)[0].paper.paper_id == base.search(GQSA, k=1)[0].paper.paper_id
    # A calibration that weighs it puts the pick first and makes it relevant.
    cal = base.calibration
    weighted = replace(cal, coef={**cal.coef, "pinned": 100.0})
    top = _with_pinned(base, pick, weighted).search(GQSA, k=3)[0]
    assert top.paper.paper_id == pick and top.relevance > 0.99


def test_one_generation_check_per_question(bundled_pipeline, monkeypatch):
    """Search, the follow-up's second search, a filter and the offline answer's word
    weights all read the one snapshot taken when the question came in."""
    cache = bundled_pipeline.store.cache
    checks = []
    current = cache.current
    monkeypatch.setattr(cache, "current", lambda index: checks.append(1) or current(index))
    conversation = Conversation()
    bundled_pipeline.answer(GQSA, conversation=conversation)
    assert len(checks) == 1
    answer = bundled_pipeline.answer("How much faster is it than 2:4 pruning?",
                                     conversation=conversation,
                                     filters=Filters(sources=("000_",)))
    assert answer.citations and len(checks) == 2  # a follow-up: two searches, one check
    bundled_pipeline.search("group quantization", filters=Filters(since="--08-01"))
    assert len(checks) == 3


def test_the_searcher_is_held_until_the_index_changes(bundled_copy):
    pipeline, _ = bundled_copy
    first = pipeline.searcher()
    assert pipeline.searcher() is first
    pipeline.store.bump_generation()  # what a write by any process does
    second = pipeline.searcher()
    assert second is not first and pipeline.searcher() is second
    assert second.search(GQSA, k=1)[0].paper.title.startswith("GQSA")


def test_a_question_is_cleaned_at_the_pipeline_entry(bundled_pipeline):
    """The pipeline cleans (a question pasted three times is asked once); the searcher
    takes the clean text as it is."""
    pasted = f"  {GQSA} {GQSA}\t{GQSA}  "
    assert bundled_pipeline.search(pasted) == bundled_pipeline.searcher().search(GQSA)


def test_stats_count_what_the_paper_records_hold(bundled_pipeline):
    stats = bundled_pipeline.stats()
    papers = bundled_pipeline.papers()
    sources: dict[str, int] = {}
    for paper in papers:
        for s in paper.sources:
            sources[s] = sources.get(s, 0) + 1
    assert stats["papers"] == len(papers)
    assert stats["sources"] == dict(sorted(sources.items()))
    assert stats["dates"] == sorted({d for p in papers for d in p.dates})
