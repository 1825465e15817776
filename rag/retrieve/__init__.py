"""Hybrid retrieval: retrievers rank papers, RRF fuses them, relevance orders the top.

The parts, one job each:

1. **The question** (:mod:`~rag.retrieve.question`): cleaned once, at the pipeline's
   entry (:func:`clean_question_with_note`); every later step takes the clean text.
2. **Filters** (:mod:`~rag.retrieve.filters`): dates, sources, categories and authors,
   turned into the ids of the papers they keep through the index's facets.
3. **Retrievers** (:mod:`~rag.retrieve.retrievers`: :class:`DenseRetriever`,
   :class:`LexicalRetriever`): one interface, ``rank(query, depth, allowed) -> Ranking``
   (paper ids best first, with each paper's best score), and each declares the relevance
   features it contributes (``FEATURES``, ``features(query, ranking, papers)``).
4. **Fusion** (:mod:`~rag.retrieve.fusion`): :func:`rrf`, weighted reciprocal-rank
   fusion of the rankings, and the pool of papers the relevance model re-orders.
5. **Evidence** (:mod:`~rag.retrieve.evidence`): the question's terms against the index
   and each paper's text (coverage, unknown words), declared like a retriever's features.
6. **Relevance** (:mod:`~rag.retrieve.relevance`): a two-stage logistic model over the
   declared features, fitted on the ``tune`` split by ``eval/calibrate.py`` per embedder.
7. **The searcher** (:mod:`~rag.retrieve.searcher`): one :class:`Searcher` per index
   generation holds the snapshot, the calibration and ``(retriever, weight)`` pairs; its
   ``search`` re-orders the first ``rerank_depth`` fused papers by relevance (a paper
   whose whole normalized title is in the question first); the rest keep their fused order.

The candidate depth is a fixed setting, not derived from ``k``: ``k`` only cuts the
list, so the top 10 at ``-k 100`` is the ``-k 10`` list.
"""

from __future__ import annotations

from rag.retrieve.evidence import (
    TermStats,
    TextEvidence,
    absent,
    coverage,
    paper_terms,
    term_stats,
    title_in_question,
)
from rag.retrieve.filters import Filters, allowed_papers
from rag.retrieve.fusion import PER_RETRIEVER, fused_order, rerank_pool, rrf
from rag.retrieve.question import (
    MAX_QUESTION_CHARS,
    Question,
    clean_question,
    clean_question_with_note,
)
from rag.retrieve.relevance import CALIBRATION_DIR, Calibration, load_calibration
from rag.retrieve.retrievers import (
    DenseRetriever,
    Features,
    LexicalRetriever,
    Query,
    Ranking,
    Retriever,
    group,
    paper_cosines,
    reciprocal_ranks,
)
from rag.retrieve.searcher import Candidate, Searcher, build_searcher, snapshot

__all__ = [
    "CALIBRATION_DIR", "MAX_QUESTION_CHARS", "PER_RETRIEVER", "Calibration", "Candidate",
    "DenseRetriever", "Features", "Filters", "LexicalRetriever", "Query", "Ranking",
    "Retriever", "Searcher", "TermStats", "TextEvidence", "allowed_papers", "build_searcher",
    "Question", "clean_question", "clean_question_with_note", "coverage", "fused_order", "group",
    "load_calibration", "paper_cosines", "paper_terms", "reciprocal_ranks",
    "rerank_pool", "rrf", "snapshot", "term_stats", "title_in_question", "absent",
]
