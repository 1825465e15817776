"""The :class:`Searcher`: one per index generation, held for a whole question.

It holds what a question reads of the index (the lexical snapshot and the facets of one
generation), the calibration, the embedder, the evidence component and the retrievers
with their fusion weights. Everything a question does (its search, a follow-up's second
search, the offline answer's term weights and unknown words) reads this one snapshot, so
a question never mixes two generations; :func:`snapshot` is the one generation check.

A retriever declares the features it adds (``FEATURES``); the relevance model reads the
union of the declared features (:attr:`Searcher.feature_names`), never a retriever by
name. Adding one is a class (see :mod:`rag.retrieve.retrievers`) and one line in
:func:`build_searcher`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from rag.absence import Absent
from rag.identity import normalize_title
from rag.retrieve.evidence import TextEvidence, absent, title_in_question
from rag.retrieve.filters import Filters, allowed_papers
from rag.retrieve.fusion import fused_order, rerank_pool, rrf
from rag.retrieve.question import dense_text
from rag.retrieve.relevance import Calibration, load_calibration
from rag.retrieve.retrievers import (
    DenseRetriever,
    Features,
    LexicalRetriever,
    Query,
    Ranking,
    Retriever,
    group,
)
from rag.text import terms
from rag.types import Hit, StoredPaper

_HIT_FIELDS = frozenset(f.name for f in fields(Hit))


def snapshot(store):
    """The index's cache for its current generation (:class:`rag.store.cache.Cached`:
    ``lexical``, ``facets``): the one place a question asks whether the index moved."""
    return store.snapshot()


def build_searcher(settings, store, embedder, snap=None,
                   calibration: Calibration | None = None) -> Searcher:
    """The searcher of the index's current generation (or of ``snap``), as the settings
    configure it: its retrievers and their weights are listed here, one line each."""
    snap = snap if snap is not None else snapshot(store)
    return Searcher(
        settings, store, embedder, lexical=snap.lexical, facets=snap.facets,
        calibration=calibration or load_calibration(settings.embedder),
        evidence=TextEvidence(snap.lexical),
        retrievers=[(DenseRetriever(store, settings), settings.dense_weight),
                    (LexicalRetriever(snap.lexical), settings.lexical_weight)])


@dataclass(frozen=True)
class Candidate:
    """A candidate paper of one question with the evidence behind it."""

    paper: StoredPaper
    features: Features  # every declared feature (Searcher.feature_names)
    match: float  # the stage-1 score that orders the papers (see Calibration)
    relevance: float  # the calibrated relevance, 0..1
    title_match: bool  # the question names the paper (title_in_question)
    shown: dict[str, float | None]  # what the retrievers show on a Hit, by field

    def hit(self, rank: int = 0, score: float = 0.0) -> Hit:
        return Hit(rank=rank, paper=self.paper, score=score,
                   relevance=round(self.relevance, 4), **self.shown)  # type: ignore[arg-type]


class Searcher:
    """Search one generation of the index. The question is already clean
    (:func:`rag.retrieve.clean_question_with_note`, at the pipeline's entry)."""

    def __init__(self, settings, store, embedder, *, lexical, facets,
                 calibration: Calibration, evidence: TextEvidence,
                 retrievers: Sequence[tuple[Retriever, float]]):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.lexical = lexical
        self.facets = facets
        self.calibration = calibration
        self.evidence = evidence
        self.retrievers = list(retrievers)

    # --- what the relevance model reads -------------------------------------------------
    @property
    def paper_features(self) -> tuple[str, ...]:
        """The paper-level features: each retriever's, then the evidence component's."""
        declared = [f for r, _ in self.retrievers for f in r.FEATURES]
        return tuple(dict.fromkeys([*declared, *self.evidence.FEATURES]))

    @property
    def question_features(self) -> tuple[str, ...]:
        """The question-level features (the calibration's second stage, beside z)."""
        return tuple(self.evidence.QUESTION_FEATURES)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Every feature a candidate carries: the union of the declared features."""
        return self.paper_features + self.question_features

    # --- the steps ----------------------------------------------------------------------
    def query(self, question: str, timings: dict | None = None) -> Query:
        t0 = time.perf_counter()
        query = Query(question, tuple(terms(question)),
                      self.embedder.embed_query(dense_text(question)))
        if timings is not None:
            timings["embed"] = (time.perf_counter() - t0) * 1000
        return query

    def rank(self, query: Query, depth: int, allowed: list[str] | None = None,
             timings: dict | None = None) -> list[Ranking]:
        """Each retriever's ranking, in the order the retrievers are listed."""
        rankings = []
        for retriever, _ in self.retrievers:
            t = time.perf_counter()
            rankings.append(retriever.rank(query, depth, allowed))
            if timings is not None:
                timings[retriever.name] = (time.perf_counter() - t) * 1000
        return rankings

    def fuse(self, rankings: list[Ranking]) -> tuple[dict[str, float], list[str]]:
        """(fused scores, fused order) of the rankings, weighted as the retrievers are."""
        lists = [r.papers for r in rankings]
        fused = rrf(lists, [w for _, w in self.retrievers], self.settings.rrf_k)
        return fused, fused_order(fused, lists)

    def score(self, query: Query, pids: list[str],
              rankings: list[Ranking]) -> dict[str, Candidate]:
        """Each paper's features, match and relevance (papers missing from the store, e.g.
        deleted since the search, are left out), in the order of ``pids``."""
        found = self.store.get_papers(pids)
        papers = {p: found[p] for p in pids if p in found}
        feats: dict[str, Features] = {p: {} for p in papers}
        shown: dict[str, dict[str, float | None]] = {p: {} for p in papers}
        for (retriever, _), ranking in zip(self.retrievers, rankings, strict=True):
            for pid, values in retriever.features(query, ranking, papers).items():
                feats[pid].update(values)
        for pid, values in self.evidence.features(query, papers).items():
            feats[pid].update(values)
        for (retriever, _), ranking in zip(self.retrievers, rankings, strict=True):
            for pid in papers:
                shown[pid].update(retriever.shown(ranking, pid, feats[pid]))
        q_norm = normalize_title(query.text)
        cal = self.calibration
        relevance = cal.relevances(feats)
        return {pid: Candidate(paper, feats[pid], cal.match(feats[pid]), relevance[pid],
                               title_in_question(paper.title, q_norm, query.text),
                               {k: v for k, v in shown[pid].items() if k in _HIT_FIELDS})
                for pid, paper in papers.items()}

    # --- the search ---------------------------------------------------------------------
    def search(self, question: str, k: int | None = None, filters: Filters | None = None,
               timings: dict | None = None) -> list[Hit]:
        """The ``k`` best papers for the question, best first: the re-rank pool ordered
        by relevance (a paper the question names first), then the rest in fused order."""
        timings = timings if timings is not None else {}
        k = k or self.settings.top_k
        allowed = self.allowed(filters)
        if allowed is not None and not allowed:
            return []
        query = self.query(question, timings)
        rankings = self.rank(query, self.settings.candidates, allowed, timings)
        t0 = time.perf_counter()
        fused, order = self.fuse(rankings)
        pool = rerank_pool(order, [r.papers for r in rankings], self.settings.rerank_depth)
        in_pool = set(pool)
        head = pool + [p for p in order if p not in in_pool][:max(0, k - len(pool))]
        scored = self.score(query, head, rankings)
        head = [p for p in head if p in scored]
        lead = sorted(head[:len(pool)], key=lambda p: (
            not scored[p].title_match, -scored[p].match, head.index(p)))
        ranked = lead + head[len(pool):]
        hits = [scored[p].hit(i, round(fused[p], 6)) for i, p in enumerate(ranked[:k], start=1)]
        timings["fuse"] = (time.perf_counter() - t0) * 1000
        return hits

    def candidates(self, question: str, filters: Filters | None = None) -> list[Candidate]:
        """The papers the search re-ranks for ``question``, in fused order, each with every
        declared feature: the rows the relevance model is fitted on (eval/calibrate.py)."""
        allowed = self.allowed(filters)
        if allowed is not None and not allowed:
            return []
        query = self.query(question)
        rankings = self.rank(query, self.settings.candidates, allowed)
        _, order = self.fuse(rankings)
        pool = rerank_pool(order, [r.papers for r in rankings], self.settings.rerank_depth)
        scored = self.score(query, pool, rankings)
        return [scored[p] for p in pool if p in scored]

    def rankings(self, question: str, depth: int) -> dict[str, list[str]]:
        """Each retriever's ranked paper ids on its own, before fusion, by retriever name:
        what a benchmark compares the fused :meth:`search` with."""
        return {r.name: r.papers for r in self.rank(self.query(question), depth)}

    def similar(self, paper_id: str, k: int | None = None,
                filters: Filters | None = None) -> list[Hit]:
        """The ``k`` papers nearest to an indexed paper, best first, the paper itself left
        out: the mean of its chunk vectors searched against every chunk (a paper's rank
        and ``dense`` score are its best chunk's cosine to that mean). [] for a paper with
        no stored vectors. ``relevance`` is the cosine clipped to 0..1 (no calibration:
        there is no question to calibrate against)."""
        k = k or self.settings.top_k
        allowed = self.allowed(filters)
        if allowed is not None:
            allowed = [p for p in allowed if p != paper_id]
            if not allowed:
                return []
        rows = self.store.chunk_vectors([paper_id]).get(paper_id)
        if rows is None or not len(rows):
            return []
        mean = rows.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        vector = mean / norm if norm > 0 else mean
        depth = max(self.settings.candidates, 8 * (k + 1))
        pids, sims = self.store.dense(vector, depth, allowed)
        ranking = group("similar", pids, sims)
        found = self.store.get_papers([p for p in ranking.papers if p != paper_id])
        order = [p for p in ranking.papers if p in found][:k]
        return [Hit(rank=i, paper=found[p], score=round(ranking.scores[p], 6),
                    relevance=round(min(1.0, max(0.0, ranking.scores[p])), 4),
                    dense=round(ranking.scores[p], 4))
                for i, p in enumerate(order, start=1)]

    # --- the rest of a question ---------------------------------------------------------
    def allowed(self, filters: Filters | None) -> list[str] | None:
        """Ids of the papers the filters keep in this generation (None: no filter)."""
        return allowed_papers(self.store, self.facets, filters)

    def absent(self, question: str, hits: Sequence[Hit] = ()) -> list[Absent]:
        """The question's words that no indexed chunk contains (nor ``hits`` spell out, as
        "multilayer perceptron" spells "MLP"), each with its kind."""
        return absent(question, self.lexical, [h.paper for h in hits])

    def term_weights(self, question: str) -> dict[str, float] | None:
        """Each of the question's stemmed terms -> its IDF in the index (None: no index)."""
        lex = self.lexical
        return {t: lex.idf(t) for t in terms(question)} if lex is not None else None

    @cached_property
    def paper_count(self) -> int:
        """Papers in the lexical index (counted once per generation, when first asked)."""
        lex = self.lexical
        return len(set(lex.paper_ids.tolist())) if lex is not None else 0

    def sources(self) -> Mapping[str, int]:
        """Every indexed source (file name) -> how many papers it lists."""
        return self.facets.source_counts()

    def categories(self) -> Mapping[str, int]:
        """Every indexed arXiv category -> how many papers carry it, most papers first."""
        return self.facets.category_counts()
