"""Hybrid retrieval: retrievers rank papers, RRF fuses them, relevance orders the top.

The steps, each its own function:

1. **Retrievers** (:class:`DenseRetriever`, :class:`LexicalRetriever`): one interface,
   ``rank(query, depth, allowed) -> Ranking`` (paper ids best first, with each
   paper's best score). Both rank *chunks*, ``depth`` of them, and :func:`group`
   turns chunks into papers: a paper's rank is its best chunk's. A third retriever
   only has to implement ``rank``.
2. **Fusion**: :func:`rrf`, weighted reciprocal-rank fusion of the rankings.
3. **Relevance** (:func:`relevance`): a logistic model over the evidence for one
   (question, paper) pair: best-chunk cosine, IDF-weighted coverage of the
   question's stemmed terms by the paper, the same for its title, the normalized
   BM25 score and the paper's reciprocal rank in each list. Its coefficients are
   fitted on the ``tune`` split by ``eval/calibrate.py``, per embedder, and read
   from ``rag/calibration/<embedder>.json``.
4. **Order**: the first ``rerank_depth`` fused papers are re-ordered by relevance
   (a paper whose whole normalized title is in the question first), so the most
   relevant paper is the first one shown; the rest keep their fused order.

The candidate depth is a fixed setting, not derived from ``k``: ``k`` only cuts the
list, so the top 10 at ``-k 100`` is the ``-k 10`` list.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import time
from collections.abc import Set
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.embed import Embedder
from rag.errors import QuestionError
from rag.identity import normalize_title
from rag.settings import Settings
from rag.store import Store
from rag.text import STOPWORDS, WORD, stem, terms, words
from rag.types import Hit, StoredPaper

MAX_QUESTION_CHARS = 2000  # a longer question is a pasted document; its head suffices
CALIBRATION_DIR = Path(__file__).parent / "calibration"


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
        return self.keeps_sources(paper.sources) and self.keeps_dates(paper.dates)

    def keeps_sources(self, sources: tuple[str, ...]) -> bool:
        """Whether a paper listed in these files passes (any of them matches one wanted)."""
        return not self.sources or any(_source_matches(s, want)
                                       for s in sources for want in self.sources)

    def keeps_dates(self, dates: tuple[str, ...]) -> bool:
        """Whether a paper listed on these dates passes (any of them is in the range)."""
        if self.since or self.until:
            return any(_in_range(d, self.since, self.until) for d in dates)
        return True


def _source_matches(source: str, wanted: str) -> bool:
    return source == wanted or wanted.lower() in source.lower()


def parse_date(text: str) -> str:
    """'2024-08-13', '--08-13', 'Aug 13' or '08-13' -> ISO or yearless ISO; ValueError otherwise.

    The date must exist: '2024-13-45' and 'Feb 30' are refused (a yearless date is
    checked against a leap year, so '--02-29' is allowed).
    """
    from rag.sources.listing import parse_listing_date

    text = text.strip()
    iso: str | None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}|--\d{2}-\d{2}", text):
        iso = text
    elif re.fullmatch(r"\d{2}-\d{2}", text):
        iso = "--" + text
    else:
        iso = parse_listing_date(text)
        if not iso:
            raise ValueError(f"'{text}' is not a date; use 2024-08-13, Aug 13 or 08-13")
    try:
        _dt.date.fromisoformat(iso.replace("--", "2000-", 1) if iso.startswith("--") else iso)
    except ValueError:
        raise ValueError(f"'{text}' is not a valid calendar date (no such month or day); "
                         "use 2024-08-13, Aug 13 or 08-13") from None
    return iso


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


def clean_question_with_note(question: str) -> tuple[str, str]:
    """(cleaned question, note): whitespace and control characters collapsed; a question
    over MAX_QUESTION_CHARS is cut, and the note says so (else it is ""). Refuses a
    question with no words."""
    from rag.text import display_safe

    # Escape sequences go whole ("\x1b[31m" must not leave a word "31m" behind).
    text = display_safe(question, newlines=False)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    if not any(ch.isalnum() for ch in text):
        raise QuestionError("The question is empty; ask something about the indexed papers.")
    text = _once(text)
    if len(text) <= MAX_QUESTION_CHARS:
        return text, ""
    note = (f"The question was {len(text):,} characters long; only its first "
            f"{MAX_QUESTION_CHARS:,} were used.")
    return text[:MAX_QUESTION_CHARS], note


def _once(text: str) -> str:
    """A question pasted many times over, once: a repeated question is the same question,
    but repeating it skews both the embedding and every word count.

    Worked example: "Q? Q? Q? Q" (the unit "Q? " three times, then a cut-off copy) -> "Q?".
    Only text that is entirely such repeats changes.
    """
    head = text[:40]
    period = text.find(head, 1)
    if period <= 0 or len(head) < 12:
        return text
    unit = text[:period]
    whole, rest = divmod(len(text), period)
    if whole >= 2 and text == unit * whole + unit[:rest]:
        return unit.strip()
    return text


def clean_question(question: str) -> str:
    """:func:`clean_question_with_note` without the note."""
    return clean_question_with_note(question)[0]


# --- retrievers -------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """A question as the retrievers see it."""

    text: str
    terms: tuple[str, ...]  # stemmed terms (rag.text.terms), in question order
    vector: np.ndarray | None = None  # the query embedding (dense retrievers)


@dataclass
class Ranking:
    """One retriever's answer: paper ids best first, each paper's best score."""

    name: str
    papers: list[str]
    scores: dict[str, float]

    def ranks(self) -> dict[str, int]:
        return {pid: i for i, pid in enumerate(self.papers, start=1)}


class Retriever(Protocol):
    """Anything that ranks papers for a query: ``depth`` is how many chunks (or
    documents) it looks at; ``allowed`` restricts the papers (None: all)."""

    name: str

    def rank(self, query: Query, depth: int, allowed: list[str] | None) -> Ranking: ...


def group(name: str, paper_ids, scores) -> Ranking:
    """Chunks (best first) -> papers: a paper's rank and score are its best chunk's.

    >>> group("x", ["a", "b", "a"], [0.9, 0.8, 0.7]).papers
    ['a', 'b']
    """
    ranking = Ranking(name, [], {})
    for pid, score in zip(paper_ids, scores, strict=False):
        if pid not in ranking.scores:
            ranking.papers.append(pid)
            ranking.scores[pid] = float(score)
    return ranking


class DenseRetriever:
    """Cosine similarity of the query embedding to chunk embeddings (Chroma)."""

    name = "dense"

    def __init__(self, store: Store):
        self.store = store

    def rank(self, query: Query, depth: int, allowed: list[str] | None) -> Ranking:
        if query.vector is None:  # a query made without an embedder
            return Ranking(self.name, [], {})
        pids, sims = self.store.dense(query.vector, depth, allowed)
        return group(self.name, pids, sims)


class LexicalRetriever:
    """BM25 over stemmed chunk terms (:mod:`rag.lexical`, a memory-mapped matrix)."""

    name = "lexical"

    def __init__(self, lex):
        self.lex = lex

    def rank(self, query: Query, depth: int, allowed: list[str] | None) -> Ranking:
        lex = self.lex
        if lex is None or not query.terms:
            return Ranking(self.name, [], {})
        # One pass over the postings of every query term: 3.4 ms at 100k chunks, and
        # linear in the postings (a 1M-chunk index needs block-max pruning; not done).
        scores = lex.scores(list(query.terms))
        if allowed is not None:
            scores = np.where(np.isin(lex.paper_ids, allowed), scores, 0.0)
        rows = _best(scores, depth)
        rows = rows[scores[rows] > 0]
        return group(self.name, [str(p) for p in lex.paper_ids[rows]], scores[rows])


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest scores, best first (ties: lower position first)."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.lexsort((top, -scores[top]))]


# --- fusion -----------------------------------------------------------------------------

def rrf(rankings: list[list[str]], weights: list[float], k: int = 60) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: score(p) = sum_i w_i / (k + rank_i(p)).

    A paper missing from a ranking gets nothing from it. RRF needs no calibration
    between cosine similarities and BM25 scores, which live on unrelated scales.
    Worked example, k = 60, weights 1 and 1: A is 1st in dense and 3rd in BM25 ->
    1/61 + 1/63 = 0.03227; B is 2nd in dense only -> 1/62 = 0.01613; C is 1st in
    BM25 only -> 1/61 = 0.01639. Order: A, C, B.

    >>> s = rrf([["A", "B"], ["C", "x", "A"]], [1.0, 1.0], k=60)
    >>> [round(s[p], 5) for p in "ABC"]
    [0.03227, 0.01613, 0.01639]
    """
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=False):
        for rank, pid in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + weight / (k + rank)
    return fused


def fused_order(fused: dict[str, float], rankings: list[list[str]]) -> list[str]:
    """Papers by fused score; a tie (a paper 1st in one list only against one 1st in the
    other only) goes to the paper with the better best single rank, then by id."""
    best: dict[str, int] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking, start=1):
            best[pid] = min(best.get(pid, rank), rank)
    return sorted(fused, key=lambda p: (-round(fused[p], 12), best.get(p, 10**9), p))


# --- relevance --------------------------------------------------------------------------

# Paper-level evidence (stage 1: how well this paper matches the question) and
# question-level evidence (stage 2: whether the question asks for something the index
# has at all). See :func:`features`.
PAPER_FEATURES = ("cosine", "coverage", "title_coverage", "bm25", "rr_dense", "rr_lexical",
                  "missing_max_idf")
QUESTION_FEATURES = ("unknown_share", "unknown_name")
FEATURES = PAPER_FEATURES + QUESTION_FEATURES

# Used when rag/calibration/<embedder>.json is missing: the earlier hand fit, on cosine
# and coverage only, with no second stage. Worked example: cosine 0.62, coverage 0.8 ->
# z = 11.07*0.62 + 5.79*0.8 - 6.88 = 4.61 -> relevance 0.99; cosine 0.40, coverage 0.30
# -> z = -0.71 -> 0.33.
DEFAULT_COEF = {"cosine": 11.07, "coverage": 5.79}
DEFAULT_INTERCEPT = -6.88


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True)
class Calibration:
    """The fitted constants of one embedder (see eval/calibrate.py).

    Two logistic stages. Stage 1 scores how well a paper matches the question:
    ``z = intercept + sum(coef[f] * paper feature f)``; it orders the papers shown.
    Stage 2 turns z into the relevance used for abstention, with the question-level
    evidence: ``relevance = 1 / (1 + e^-(q_intercept + q_coef["z"] * z + sum(q_coef[f] *
    question feature f)))``. Worked example (made-up constants): z = 2.0, q_coef z 1.2,
    unknown_share 0.3 at q_coef -4.0, unknown_name 1 at q_coef -1.5, q_intercept 0.5 ->
    0.5 + 2.4 - 1.2 - 1.5 = 0.2 -> relevance 0.55. The fitted intercept is shifted so
    that relevance 0.5 is the abstention cut chosen on the tune split.
    """

    embedder: str
    coef: dict[str, float]
    intercept: float
    fitted: bool  # False: the defaults above, no calibration file
    q_coef: dict[str, float] = field(default_factory=lambda: {"z": 1.0})
    q_intercept: float = 0.0
    source: str = ""

    def match(self, features: dict[str, float]) -> float:
        """Stage 1: the paper's match score z (orders papers within a question)."""
        return self.intercept + sum(c * features.get(n, 0.0) for n, c in self.coef.items())

    def relevance(self, features: dict[str, float]) -> float:
        """Stage 2: the relevance (0..1) of the paper to the question."""
        z = self.q_intercept + sum(
            c * (self.match(features) if n == "z" else features.get(n, 0.0))
            for n, c in self.q_coef.items())
        return _sigmoid(z)


@lru_cache(maxsize=8)
def load_calibration(embedder: str) -> Calibration:
    """``rag/calibration/<embedder>.json``, or the defaults when it is missing or unreadable."""
    path = CALIBRATION_DIR / f"{embedder}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("embedder") != embedder:
            raise ValueError("calibration for another embedder")
        paper, question = data["paper_model"], data["question_model"]
        return Calibration(
            embedder, {str(k): float(v) for k, v in paper["coef"].items() if k in FEATURES},
            float(paper["intercept"]), True,
            {str(k): float(v) for k, v in question["coef"].items()
             if k in QUESTION_FEATURES or k == "z"},
            float(question["intercept"]), str(path))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Calibration(embedder, dict(DEFAULT_COEF), DEFAULT_INTERCEPT, False)


@dataclass(frozen=True)
class TermStats:
    """The question's distinct stemmed terms as the index sees them."""

    weights: dict[str, float]  # term -> IDF; a term no chunk has gets the largest IDF
    unknown: frozenset[str]  # terms no chunk contains (df = 0)
    max_idf: float  # the IDF of a term with df = 0 in this index
    unknown_name: bool = False  # an unknown word is written like a name: AWQ, RoCE, BitNet


# A word written like a name or an acronym: two capitals (AWQ, RoCE, BitNet), or letters
# and digits mixed (GPT4o, 24B). Ordinary capitalized words ("Berlin", "Which") are not.
_NAME_LIKE = re.compile(r"^(?:\w*[A-Z]\w*[A-Z]\w*|(?=\w*[A-Za-z])(?=\w*\d)\w+)$")


def term_stats(query_terms, lex, question: str = "") -> TermStats:
    """Each distinct query term's IDF in the index. A term no chunk contains (df = 0)
    gets the largest IDF there is: a question that hinges on a word no paper uses
    should not be covered by the papers' other words. ``question`` (as written) tells
    whether an unknown word is written like a name."""
    if lex is None:
        return TermStats({t: 1.0 for t in query_terms}, frozenset(), 1.0)
    weights = {t: lex.idf(t) for t in dict.fromkeys(query_terms)}
    unknown = frozenset(t for t in weights if lex.doc_freq(t) == 0)
    named = any(_NAME_LIKE.match(w) and stem(w.lower()) in unknown
                for w in WORD.findall(question))
    return TermStats(weights, unknown, float(lex.idf("\x00")),  # "\x00" is never a term
                     named)


def coverage(weights: dict[str, float], present: Set[str]) -> float:
    """IDF-weighted share of the question's terms that a text contains.

    >>> coverage({"gpipe": 6.0, "propos": 1.0, "paper": 1.0}, {"gpipe", "paper"})
    0.875
    """
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0


def features(*, cosine: float, stats: TermStats, paper: StoredPaper, bm25: float | None,
             rank_dense: int | None, rank_lexical: int | None) -> dict:
    """The evidence for one (question, paper) pair, as the relevance model reads it.

    ``bm25`` is divided by the sum of the query terms' IDFs, the most a term can add
    per unit of its tf saturation, so it reads alike for short and long questions.
    ``missing_max_idf``: the IDF of the most distinctive question term the paper lacks,
    over the index's largest IDF (0: it lacks none). ``unknown_share``: the IDF share of
    the question's terms that no indexed chunk contains (the same for every paper).
    """
    weights = stats.weights
    total = sum(weights.values()) or 1.0
    present, in_title = paper_terms(paper.title, paper.abstract)
    return {
        "cosine": cosine,
        "coverage": coverage(weights, present),
        "title_coverage": coverage(weights, in_title),
        "bm25": (bm25 or 0.0) / total,
        "rr_dense": 1.0 / rank_dense if rank_dense else 0.0,
        "rr_lexical": 1.0 / rank_lexical if rank_lexical else 0.0,
        "missing_max_idf": max((w for t, w in weights.items() if t not in present),
                               default=0.0) / stats.max_idf,
        "unknown_share": sum(weights[t] for t in stats.unknown) / total,
        "unknown_name": 1.0 if stats.unknown_name else 0.0,
    }


@lru_cache(maxsize=4096)
def paper_terms(title: str, abstract: str) -> tuple[frozenset[str], frozenset[str]]:
    """The stemmed terms of a paper (title and abstract) and of its title alone; cached,
    since the same papers come back for question after question (UI, eval)."""
    # The distinct words first, then one stem each: the same set as terms(), at 2/3 of
    # the cost (an abstract repeats its words; ~25 papers are scored per question).
    in_title = frozenset(terms(title))
    return in_title | frozenset(map(stem, set(words(abstract)))), in_title


def relevance(feats: dict[str, float], calibration: Calibration) -> float:
    """The calibrated relevance (0..1) of one paper to the question."""
    return calibration.relevance(feats)


def title_in_question(title: str, question_norm: str) -> bool:
    """Whether the question names the paper: its whole normalized title (3 words or
    more: "Summary" and "Reply" are too common), or the name before the title's colon
    when that name is written like one ("GPipe: Efficient Training ..." for "Which paper
    proposes GPipe?"; 1 to 3 words, 4 characters or more, one of them like AWQ, BigCodeBench
    or GPT4o), occurs word for word in the question.

    >>> title_in_question("GPipe: Efficient Training of Giant Neural Networks",
    ...                   normalize_title("Which paper proposes GPipe?"))
    True
    """
    padded = f" {question_norm} "
    norm = normalize_title(title)
    if len(norm.split()) >= 3 and f" {norm} " in padded:
        return True
    head, colon, _ = title.partition(":")
    names = WORD.findall(head)
    return bool(colon) and 1 <= len(names) <= 3 and len(head.strip()) >= 4 and any(
        _NAME_LIKE.match(n) for n in names) and f" {normalize_title(head)} " in padded


# --- the search -------------------------------------------------------------------------

def allowed_papers(store: Store, filters: Filters | None) -> list[str] | None:
    """Ids of the papers the filters keep (None: no filter). A source name that matches
    no indexed source is an error, not an empty result.

    Chroma does the filtering (:meth:`rag.store.Store.filter_papers`): the filters are
    asked about each distinct date and source value, not about every paper.
    """
    if filters is None or not filters.active():
        return None
    if filters.sources:
        known = store.sources()
        unknown = [w for w in filters.sources if not any(_source_matches(s, w) for s in known)]
        if unknown:
            raise QuestionError(
                f"No indexed source matches {', '.join(repr(u) for u in unknown)}; "
                "`ask stats` lists the sources.")
    return store.filter_papers(
        dates=filters.keeps_dates if filters.since or filters.until else None,
        sources=filters.keeps_sources if filters.sources else None)


def unknown_terms(question: str, store: Store) -> list[str]:
    """The question's words, as written, whose stems no indexed chunk contains.

    For an abstention that can say "none of the indexed papers mentions NVMe". Words of
    the stop list and pure numbers are left out; a word asked twice is listed once.
    """
    lex = store.lexical()
    if lex is None:
        return []
    out: list[str] = []
    seen: set[str] = set()
    for w in WORD.findall(question):
        low = w.lower()
        if low in STOPWORDS or low.isdigit() or low in seen:
            continue
        seen.add(low)
        if lex.doc_freq(stem(low)) == 0:
            out.append(w)
    return out


def retrievers(settings: Settings, store: Store) -> list[tuple[Retriever, float]]:
    """The retrievers and their fusion weights."""
    return [(DenseRetriever(store), settings.dense_weight),
            (LexicalRetriever(store.lexical()), settings.lexical_weight)]


def candidates(question: str, settings: Settings, store: Store, embedder: Embedder,
               allowed: list[str] | None = None, timings: dict | None = None):
    """(query, rankings, fused scores, fused order): every candidate paper, before relevance."""
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    query = Query(question, tuple(terms(question)), embedder.embed_query(question))
    timings["embed"] = (time.perf_counter() - t0) * 1000
    parts = retrievers(settings, store)
    rankings: list[Ranking] = []
    for retriever, _ in parts:
        t = time.perf_counter()
        rankings.append(retriever.rank(query, settings.candidates, allowed))
        timings[retriever.name] = (time.perf_counter() - t) * 1000
    lists = [r.papers for r in rankings]
    fused = rrf(lists, [w for _, w in parts], settings.rrf_k)
    return query, rankings, fused, fused_order(fused, lists)


def search(
    question: str, settings: Settings, store: Store, embedder: Embedder,
    k: int | None = None, filters: Filters | None = None, timings: dict | None = None,
) -> list[Hit]:
    """The ``k`` best papers for the question, best first."""
    timings = timings if timings is not None else {}
    question = clean_question(question)
    k = k or settings.top_k
    allowed = allowed_papers(store, filters)
    if allowed is not None and not allowed:
        return []
    query, rankings, fused, order = candidates(question, settings, store, embedder, allowed,
                                               timings)
    t3 = time.perf_counter()
    pool = rerank_pool(order, rankings, settings.rerank_depth)
    in_pool = set(pool)
    head = pool + [p for p in order if p not in in_pool][:max(0, k - len(pool))]
    scored = {s.hit.paper.paper_id: s for s in score_papers(query, head, rankings, settings, store)}
    head = [p for p in head if p in scored]  # a paper deleted since the search is left out
    lead = sorted(head[:len(pool)], key=lambda p: (
        not scored[p].title_match, -scored[p].match, head.index(p)))
    ranked = lead + head[len(pool):]
    hits = [replace(scored[p].hit, rank=i, score=round(fused[p], 6))
            for i, p in enumerate(ranked[:k], start=1)]
    timings["fuse"] = (time.perf_counter() - t3) * 1000
    return hits


PER_RETRIEVER = 5  # each retriever's best papers always reach the re-rank


def rerank_pool(order: list[str], rankings: list[Ranking], depth: int) -> list[str]:
    """The papers re-ordered by relevance: the first ``depth`` fused papers plus each
    retriever's first PER_RETRIEVER, in fused order. A paper that only BM25 finds, at
    rank 1 (an exact name), scores 1/61 in RRF and can sit below 20 papers that both
    retrievers rank middling; it must still be judged on its evidence."""
    chosen = set(order[:depth])
    for ranking in rankings:
        chosen.update(ranking.papers[:PER_RETRIEVER])
    return [p for p in order if p in chosen]


@dataclass
class Scored:
    """A paper's hit (rank and fused score still to be set) and the evidence behind it."""

    hit: Hit
    title_match: bool  # its whole title is in the question
    features: dict
    match: float = 0.0  # the stage-1 score that orders the papers (see Calibration)


def score_papers(query: Query, pids: list[str], rankings: list[Ranking], settings: Settings,
                 store: Store) -> list[Scored]:
    """Relevance features and score of each paper (papers missing from the store are
    left out). Also used by eval/calibrate.py to collect the features it fits on."""
    papers = store.get_papers(pids)
    by_name = {r.name: r for r in rankings}
    dense = by_name.get("dense", Ranking("dense", [], {}))
    lexical = by_name.get("lexical", Ranking("lexical", [], {}))
    cosines = dict(dense.scores)
    missing = [p for p in pids if p not in cosines and p in papers]
    if missing and query.vector is not None:  # a lexical-only paper needs a cosine too
        cosines.update(paper_cosines(store, query.vector, [papers[p] for p in missing],
                                     settings))
    d_rank, l_rank = dense.ranks(), lexical.ranks()
    stats = term_stats(query.terms, store.lexical(), query.text)
    calibration = load_calibration(settings.embedder)
    q_norm = normalize_title(query.text)
    out = []
    for pid in pids:
        paper = papers.get(pid)
        if paper is None:
            continue
        cos = cosines.get(pid, 0.0)
        feats = features(cosine=cos, stats=stats, paper=paper,
                         bm25=lexical.scores.get(pid), rank_dense=d_rank.get(pid),
                         rank_lexical=l_rank.get(pid))
        lex_score = lexical.scores.get(pid)
        hit = Hit(rank=0, paper=paper, score=0.0,
                  relevance=round(relevance(feats, calibration), 4),
                  dense=round(cos, 4),
                  lexical=round(lex_score, 4) if lex_score is not None else None)
        out.append(Scored(hit, title_in_question(paper.title, q_norm), feats,
                          calibration.match(feats)))
    return out


def paper_cosines(store: Store, qvec: np.ndarray, papers: list[StoredPaper],
                  settings: Settings) -> dict[str, float]:
    """Best chunk cosine of papers that only BM25 found, as dense papers get theirs.

    Their chunks are read by id, as many as the abstract can hold plus one: a token is
    rarely under 3 characters, so with MiniLM's 110-token chunks (24 overlap: a new chunk
    every 86 tokens) a 1,500-character abstract is at most 1500 / 3 / 86 + 1 = 6 chunks;
    7 ids are asked for instead of 32 (a paper that fills them all is read in full).
    """
    step = max(1, settings.chunk_size - settings.chunk_overlap)
    guess = {p.paper_id: min(settings.max_chunks_per_paper, len(p.abstract) // 3 // step + 2)
             for p in papers}
    vectors = store.chunk_vectors([p.paper_id for p in papers], guess)
    return {pid: float(np.max(vecs @ qvec)) for pid, vecs in vectors.items()}
