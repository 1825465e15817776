"""Pruned top-k (rag.topk) returns exactly what scoring every posting returns: the same
rows in the same order and the same scores, on thousands of seeded random questions over
the bundled corpus and over a larger Zipfian synthetic index."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from rag_helpers import BUNDLED

from rag import topk
from rag.lexical import K1, B, idf
from rag.text import sentences, terms
from rag.topk import TermPostings, block_bounds, exhaustive, top_k


class Index:
    """Postings by term id (rows ascending, float32 tf) and the norm of every row."""

    def __init__(self, term_ids: list[np.ndarray], n_terms: int):
        n = len(term_ids)
        lengths = np.array([len(t) for t in term_ids])
        key = np.concatenate(term_ids).astype(np.int64) * n + np.repeat(np.arange(n), lengths)
        key, tf = np.unique(key, return_counts=True)
        words, rows = key // n, key % n
        starts = np.searchsorted(words, np.arange(n_terms + 1))
        self.postings = [(rows[a:b], tf[a:b].astype(np.float32))
                         for a, b in zip(starts[:-1], starts[1:], strict=True)]
        self.df = np.diff(starts)
        self.n = n
        avgdl = max(lengths.mean(), 1e-9)
        self.norm = (K1 * (1 - B + B * lengths / avgdl)).astype(np.float32)
        self.by_df = np.argsort(-self.df, kind="stable")  # most common first

    def query(self, ids, cached=False) -> list[TermPostings]:
        """The query's TermPostings: a repeated term once, its weight times its count."""
        ids, counts = np.unique(np.asarray(ids, np.int64), return_counts=True)
        out = []
        for w, c in zip(ids, counts, strict=True):
            rows, tf = self.postings[w]
            t = TermPostings(float(idf(self.n, self.df[w]) * c), rows, tf)
            if cached:
                t.bounds = block_bounds(rows, tf, self.norm)
            out.append(t)
        return out


@pytest.fixture(scope="module")
def bundled():
    """The bundled corpus cut into sentence chunks, tokenized as the BM25 index is."""
    from rag.sources import expand_paths, load_path

    vocab: dict[str, int] = {}
    docs = []
    for paper in (p for f in expand_paths([BUNDLED]) for p in load_path(f).papers):
        for text in [paper.title, *sentences(paper.abstract)]:
            docs.append(np.array([vocab.setdefault(w, len(vocab)) for w in terms(text)],
                                 np.int64))
    docs.append(np.zeros(0, np.int64))  # a chunk with no term at all
    return Index(docs, len(vocab))


@pytest.fixture(scope="module")
def synthetic():
    """40k chunks of 60-200 terms drawn from a Zipfian vocabulary of 20k terms (the
    commonest in nearly every chunk, like "the"), some with a term many times."""
    rng = np.random.default_rng(23)
    v = 20_000
    p = 1.0 / np.arange(1, v + 1) ** 1.05
    p /= p.sum()
    lengths = rng.integers(60, 201, 40_000)
    tokens = rng.choice(v, size=int(lengths.sum()), p=p)
    docs = np.split(tokens, np.cumsum(lengths)[:-1])
    for d in docs[::97]:
        d[: len(d) // 3] = d[0]  # a chunk that repeats one term (high tf)
    return Index(docs, v)


def same(index: Index, ids, k: int, live=None, cached=False) -> None:
    q = index.query(ids, cached)
    want_rows, want_scores = exhaustive(q, index.norm, k, live)
    got_rows, got_scores = top_k(q, index.norm, k, live)
    assert got_rows.tolist() == want_rows.tolist(), (ids, k)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-6)
    assert len(got_rows) <= k and (got_scores > 0).all()
    if live is not None:
        assert live[got_rows].all()


def random_questions(index: Index, rng, n: int):
    """Questions like users ask: a few content words (any frequency) with stop words
    (the commonest terms) mixed in; one-word questions; 20-word questions."""
    common = index.by_df[:30]
    seen = np.flatnonzero(index.df > 0)
    for _ in range(n):
        size = int(rng.choice([1, 2, 3, 5, 8, 12, 20]))
        stop = rng.integers(0, size + 1) if size > 1 else 0
        yield np.concatenate([rng.choice(common, stop), rng.choice(seen, size - stop)])


@pytest.mark.parametrize("name", ["bundled", "synthetic"])
def test_random_questions_match_exhaustive(name, request):
    index = request.getfixturevalue(name)
    rng = np.random.default_rng(7)
    for n, ids in enumerate(random_questions(index, rng, 1500)):
        k = int(rng.choice([1, 10, 100, 100, 100, 1000]))
        same(index, ids, k, cached=n % 2 == 0)


def test_stop_word_questions(synthetic):
    """Only the commonest terms: every list is long, and pruning must still be exact."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        ids = rng.choice(synthetic.by_df[:50], rng.integers(1, 12))
        same(synthetic, ids, 100, cached=True)


def test_one_word_questions(synthetic):
    """Over the whole frequency range, from a term in 1 chunk to one in nearly all."""
    for w in synthetic.by_df[:: len(synthetic.by_df) // 300]:
        if synthetic.df[w]:
            same(synthetic, [w], 100)
            same(synthetic, [w], 10, cached=True)


def test_repeated_terms_count_again(synthetic):
    """A term asked twice weighs twice (the query's term count), as in rag.lexical."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        ids = rng.choice(synthetic.by_df[:2000], 4)
        same(synthetic, np.concatenate([ids, ids[:2], ids[:1]]), 50)


def test_k_larger_than_the_matches(bundled):
    rare = np.flatnonzero((bundled.df > 0) & (bundled.df < 5))[:100]
    for w in rare:
        q = bundled.query([w])
        rows, scores = top_k(q, bundled.norm, 1000)
        assert len(rows) == bundled.df[w]
        same(bundled, [w, rare[0]], 1000)


def test_live_mask_removing_most_rows(synthetic):
    """Deleted or filtered-out rows never come back, and the rest are still exact."""
    rng = np.random.default_rng(5)
    for n, ids in enumerate(random_questions(synthetic, rng, 300)):
        live = rng.random(synthetic.n) < [0.5, 0.05, 0.001][n % 3]
        same(synthetic, ids, 100, live=live, cached=n % 2 == 0)
    nobody = np.zeros(synthetic.n, bool)
    assert len(top_k(synthetic.query(synthetic.by_df[:3]), synthetic.norm, 10, nobody)[0]) == 0


def test_nothing_to_score(bundled):
    """No term, empty postings, zero weights, k = 0: nothing comes back, no error."""
    empty = TermPostings(3.0, np.zeros(0, np.int64), np.zeros(0, np.float32))
    rows, tf = bundled.postings[int(bundled.by_df[0])]
    zero = TermPostings(0.0, rows, tf)
    for q, k in [([], 10), ([empty], 10), ([zero], 10), ([zero, empty], 5),
                 (bundled.query(bundled.by_df[:2]), 0)]:
        got = top_k(q, bundled.norm, k)
        assert len(got[0]) == len(got[1]) == 0
        assert exhaustive(q, bundled.norm, k)[0].tolist() == []
    same(bundled, [], 10)


def test_ties_go_to_the_lower_row():
    """All rows alike: every score ties, and the lowest rows win, in order."""
    n = 5000
    norm = np.full(n, 1.2, np.float32)
    q = [TermPostings(1.5, np.arange(0, n, 3), np.ones(len(range(0, n, 3)), np.float32)),
         TermPostings(0.2, np.arange(n), np.ones(n, np.float32))]
    rows, scores = top_k(q, norm, 100)
    assert rows.tolist() == list(range(0, 300, 3))
    assert rows.tolist() == exhaustive(q, norm, 100)[0].tolist()
    assert len(set(scores.tolist())) == 1


def test_worked_examples():
    assert doctest.testmod(topk).failed == 0


def test_very_long_questions(synthetic):
    """150 terms (or one term given per index segment): float32 partial sums of that many
    lists stay within the pruning margin."""
    rng = np.random.default_rng(9)
    same(synthetic, rng.choice(synthetic.by_df[:5000], 150, replace=False), 100)


def test_a_term_given_per_segment(synthetic):
    """A term's postings may come as one TermPostings per index segment (disjoint rows,
    the same weight): the answer is that of the whole lists, no concatenation needed."""
    rng = np.random.default_rng(13)
    for ids in random_questions(synthetic, rng, 150):
        whole = synthetic.query(ids)
        parts = []
        for t in whole:
            cuts = np.sort(rng.integers(0, len(t.rows) + 1, 2))
            parts += [TermPostings(t.weight, r, f) for r, f in
                      zip(np.split(t.rows, cuts), np.split(t.tf, cuts), strict=True)]
        want = exhaustive(whole, synthetic.norm, 100)
        got = top_k(parts, synthetic.norm, 100)
        assert got[0].tolist() == want[0].tolist()
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)


# --- rag.topk_scan: the compiled scan of large indexes -----------------------------------

def scan(index: Index, ids, k: int, live=None, cuts=()):
    """scan_top over ``index`` cut into segments at the global rows ``cuts`` (each
    segment's rows local to it, as rag.lexical stores them)."""
    from rag.topk_scan import scan_top

    q = index.query(ids)
    bounds = [0, *cuts, index.n]
    spans = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        parts = [(t.rows[(t.rows >= a) & (t.rows < b)] - a, t.tf[(t.rows >= a) & (t.rows < b)])
                 for t in q]
        sizes = np.array([len(r) for r, _ in parts], np.int64)
        hi = np.cumsum(sizes)
        rows = np.concatenate([np.zeros(0, np.int64)] + [r for r, _ in parts]).astype(np.int32)
        tf = np.concatenate([np.zeros(0, np.float32)] + [f for _, f in parts])
        spans.append((rows, tf, hi - sizes, hi))
    norm = index.norm.astype(np.float64)
    live = np.ones(index.n, bool) if live is None else live
    acc = np.zeros(index.n, np.float32)
    got = scan_top(spans, np.array(bounds[:-1]), np.array([t.weight for t in q]), norm,
                   index.norm, live, k, acc)
    assert not acc.any()  # left zeroed for the next question
    return got


def same_scan(index: Index, ids, k: int, live=None, cuts=()) -> None:
    """The scan's answer is exhaustive scoring's, scores bit for bit."""
    q = index.query(ids)
    want_rows, want_scores = exhaustive(q, index.norm.astype(np.float64), k, live)
    got_rows, got_scores = scan(index, ids, k, live, cuts)
    assert got_rows.tolist() == want_rows.tolist(), (ids, k)
    assert got_scores.tolist() == want_scores.tolist(), (ids, k)


@pytest.mark.parametrize("name", ["bundled", "synthetic"])
def test_the_scan_matches_exhaustive(name, request):
    index = request.getfixturevalue(name)
    rng = np.random.default_rng(17)
    for n, ids in enumerate(random_questions(index, rng, 600)):
        k = int(rng.choice([1, 10, 100, 100, 1000]))
        cuts = () if n % 3 else tuple(np.sort(rng.integers(0, index.n, 2)).tolist())
        same_scan(index, ids, k, cuts=cuts)


def test_the_scan_with_common_terms_ties_and_masks(synthetic):
    """Stop-word questions (a tail worth probing, or too many rows to probe: scanned),
    150-term questions, rows filtered out, every score tied, nothing to score, k = 0."""
    rng = np.random.default_rng(19)
    for _ in range(100):
        same_scan(synthetic, rng.choice(synthetic.by_df[:50], rng.integers(1, 12)), 100)
        rare = rng.choice(synthetic.by_df[2000:8000], 4)
        same_scan(synthetic, np.concatenate([rare, synthetic.by_df[:6]]), 20)
    same_scan(synthetic, rng.choice(synthetic.by_df[:5000], 150, replace=False), 100)
    for keep in (0.5, 0.01, 0.0):
        same_scan(synthetic, synthetic.by_df[[3, 200, 900]], 100,
                  live=rng.random(synthetic.n) < keep, cuts=(10_000,))
    flat = Index([np.array([0, 1]) if r % 3 == 0 else np.array([1]) for r in range(3000)], 2)
    rows, scores = scan(flat, [0, 1], 50)
    assert rows.tolist() == list(range(0, 150, 3)) and len(set(scores.tolist())) == 1
    same_scan(flat, [0, 1], 50, cuts=(7, 1500))
    assert len(scan(synthetic, [], 10)[0]) == 0
    assert len(scan(synthetic, synthetic.by_df[:3], 0)[0]) == 0  # k = 0, as exhaustive
