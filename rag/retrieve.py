"""Hybrid retrieval: dense + BM25 over chunks, fused, grouped into papers.

Both retrievers rank *chunks*; a paper's rank in a list is the rank of its best
chunk there (first occurrence), so a paper with five matching chunks is still
one paper. The two paper rankings are fused with weighted reciprocal-rank
fusion (RRF):

    score(p) = w_dense / (k + rank_dense(p)) + w_lex / (k + rank_lex(p))

Worked example, k = 60, both weights 1: paper A is 1st in dense and 3rd in
BM25 -> 1/61 + 1/63 = 0.03227; paper B is 2nd in dense and absent from BM25
(it counts 0 there) -> 1/62 = 0.01613; paper C is absent from dense and 1st in
BM25 -> 1/61 = 0.01639. Order: A, C, B. RRF needs no score calibration between
cosine similarities and BM25 scores, which live on unrelated scales.

Abstention needs an absolute signal, which RRF does not give: ``relevance`` is
a logistic combination of the best chunk's cosine similarity and the share of
the question's (IDF-weighted) content words that the paper's text contains; see
:func:`relevance`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import numpy as np

from rag.embed import Embedder
from rag.errors import QuestionError
from rag.lexical import words
from rag.settings import Settings
from rag.store import Store
from rag.types import Hit, StoredPaper


@dataclass(frozen=True)
class Filters:
    """Keep papers listed in a date range and/or from some sources.

    Dates are ISO (``2024-08-13``) or yearless (``--08-13``, from listing pages
    that give no year). A bound compares on month-day when either side has no year.
    """

    since: str | None = None
    until: str | None = None
    sources: tuple[str, ...] = ()

    def active(self) -> bool:
        return bool(self.since or self.until or self.sources)

    def keeps(self, paper: StoredPaper) -> bool:
        if self.sources and not any(
            s == want or want.lower() in s.lower() for s in paper.sources for want in self.sources
        ):
            return False
        if self.since or self.until:
            return any(_in_range(d, self.since, self.until) for d in paper.dates)
        return True


def parse_date(text: str) -> str:
    """'2024-08-13', '--08-13', 'Aug 13' or '08-13' -> ISO or yearless ISO; ValueError otherwise."""
    from rag.sources.listing import parse_listing_date

    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}|--\d{2}-\d{2}", text):
        return text
    if re.fullmatch(r"\d{2}-\d{2}", text):
        return "--" + text
    parsed = parse_listing_date(text)
    if parsed:
        return parsed
    raise ValueError(f"'{text}' is not a date; use 2024-08-13, Aug 13 or 08-13")


def _in_range(date: str, since: str | None, until: str | None) -> bool:
    def cmp_key(a: str, b: str) -> tuple[str, str]:
        if a.startswith("--") or b.startswith("--"):
            return a[-5:], b[-5:]
        return a, b

    if since:
        a, b = cmp_key(date, since)
        if a < b:
            return False
    if until:
        a, b = cmp_key(date, until)
        if a > b:
            return False
    return True


def clean_question(question: str) -> str:
    """Collapse whitespace and control characters; refuse a question with no words."""
    text = "".join(ch if ch.isprintable() else " " for ch in question)
    text = " ".join(text.split())
    if not any(ch.isalnum() for ch in text):
        raise QuestionError("The question is empty; ask something about the indexed papers.")
    return text[:2000]  # a question longer than this is a pasted document; its head suffices


# --- relevance (abstention signal) -----------------------------------------------------

# Logistic model over two features, fitted on the dev questions (eval/datasets/dev.jsonl,
# answerable vs unanswerable, threshold set for under 5% false abstention):
#   z = A * cosine + B * coverage + C,  relevance = 1 / (1 + e^-z)
# Worked example: cosine 0.62, coverage 0.8 -> z = 11.07*0.62 + 5.79*0.8 - 6.88 = 4.61
# -> relevance 0.99 (answer); cosine 0.40, coverage 0.30 -> z = -0.71 -> 0.33 (abstain
# under the default threshold 0.47).
REL_A, REL_B, REL_C = 11.07, 5.79, -6.88


def relevance(cosine: float, coverage: float) -> float:
    z = REL_A * cosine + REL_B * coverage + REL_C
    return 1.0 / (1.0 + math.exp(-z))


def _coverage(q_tokens: list[str], idf: dict[str, float], text: str) -> float:
    """IDF-weighted share of the question's content words present in the text."""
    if not q_tokens:
        return 0.0
    present = set(re.findall(r"\w+", text.lower()))
    total = sum(idf.get(t, 1.0) for t in q_tokens)
    have = sum(idf.get(t, 1.0) for t in q_tokens if t in present or _stem_hit(t, present))
    return have / total if total else 0.0


def _stem_hit(token: str, words: set[str]) -> bool:
    stem = token[:6] if len(token) > 6 else None
    return bool(stem) and any(w.startswith(stem) for w in words)


# --- the search -------------------------------------------------------------------------

def allowed_papers(store: Store, filters: Filters | None) -> list[str] | None:
    if filters is None or not filters.active():
        return None
    return [p.paper_id for p in store.iter_papers() if filters.keeps(p)]


def search(
    question: str, settings: Settings, store: Store, embedder: Embedder,
    k: int | None = None, filters: Filters | None = None, timings: dict | None = None,
) -> list[Hit]:
    """The ``k`` best papers for the question, best first."""
    timings = timings if timings is not None else {}
    question = clean_question(question)
    k = k or settings.top_k
    n = max(settings.candidates, 4 * k)

    t0 = time.perf_counter()
    allowed = allowed_papers(store, filters)
    if allowed is not None and not allowed:
        return []
    qvec = embedder.embed_query(question)
    t1 = time.perf_counter()
    _, d_pids, d_docs, d_sims = store.dense(qvec, n, allowed)
    t2 = time.perf_counter()
    lex = store.lexical()
    q_words = words(question) if lex is not None else []
    l_pids, l_docs, l_scores, idf = [], [], [], {}
    if lex is not None and q_words:
        l_pids, l_rows, l_scores = _bm25(lex, q_words, n, allowed)
        l_docs = l_rows
        idf = _idf(lex, q_words)
    t3 = time.perf_counter()

    # Group chunks into papers: first (best) occurrence gives the paper's rank.
    best_dense: dict[str, float] = {}
    rank_dense: dict[str, int] = {}
    texts: dict[str, list[str]] = {}
    for pid, doc, sim in zip(d_pids, d_docs, d_sims):
        if pid not in rank_dense:
            rank_dense[pid] = len(rank_dense) + 1
            best_dense[pid] = sim
        texts.setdefault(pid, []).append(doc)
    rank_lex: dict[str, int] = {}
    best_lex: dict[str, float] = {}
    for pid, row, score in zip(l_pids, l_docs, l_scores):
        if pid not in rank_lex:
            rank_lex[pid] = len(rank_lex) + 1
            best_lex[pid] = score

    rrf = settings.rrf_k
    fused = {
        pid: (settings.dense_weight / (rrf + rank_dense[pid]) if pid in rank_dense else 0.0)
        + (settings.lexical_weight / (rrf + rank_lex[pid]) if pid in rank_lex else 0.0)
        for pid in set(rank_dense) | set(rank_lex)
    }
    top = sorted(fused, key=lambda p: (-fused[p], p))[:k]
    papers = store.get_papers(top)
    missing_dense = [p for p in top if p not in best_dense]
    if missing_dense:  # a lexical-only paper still needs a cosine for its relevance
        for pid, sim in _paper_cosines(store, qvec, missing_dense).items():
            best_dense[pid] = sim
    hits = []
    for rank, pid in enumerate((p for p in top if p in papers), start=1):
        paper = papers[pid]
        cos = best_dense.get(pid, 0.0)
        cov = _coverage(q_words, idf, f"{paper.title} {paper.abstract}")
        hits.append(Hit(
            rank=rank, paper=paper, score=round(fused[pid], 6),
            relevance=round(relevance(cos, cov), 4), chunk_texts=tuple(texts.get(pid, ())[:3]),
            dense=round(cos, 4), lexical=round(best_lex[pid], 4) if pid in best_lex else None,
        ))
    t4 = time.perf_counter()
    timings.update(embed=(t1 - t0) * 1000, dense=(t2 - t1) * 1000, lexical=(t3 - t2) * 1000,
                   fuse=(t4 - t3) * 1000)
    return hits


def _bm25(lex, q_words: list[str], n: int, allowed: list[str] | None):
    scores = lex.scores(q_words)
    if allowed is not None:
        scores = np.where(np.isin(lex.paper_ids, allowed), scores, 0.0)
    n = min(n, len(scores))  # a built index has at least one row
    idx = np.argpartition(-scores, n - 1)[:n]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    idx = [i for i in idx if scores[i] > 0]
    return ([str(lex.paper_ids[i]) for i in idx], [str(lex.chunk_ids[i]) for i in idx],
            [float(scores[i]) for i in idx])


def _idf(lex, q_words: list[str]) -> dict[str, float]:
    """BM25's IDF of each question word (words absent from the index weigh 1)."""
    return {w: lex.idf(w) if w in lex.vocab else 1.0 for w in set(q_words)}


def _paper_cosines(store: Store, qvec: np.ndarray, pids: list[str]) -> dict[str, float]:
    """Best chunk cosine of papers that only BM25 found, as dense papers get theirs."""
    return {pid: float(np.max(vecs @ qvec)) for pid, vecs in store.chunk_vectors(pids).items()}
