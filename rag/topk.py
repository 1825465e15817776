"""Exact BM25 top-k over postings, pruned: MaxScore with block-max bounds, in numpy.

A question's score for a row (a chunk) is the sum over its terms of::

    weight(w) * tf / (tf + norm[row])      norm = k1 * (1 - b + b * |d| / avgdl)

(:mod:`rag.lexical`). Scoring every posting of every question term is linear in the
postings: at 1M chunks a stop word alone has ~1M of them. Yet ``tf / (tf + norm)`` is
below 1, so a term can add at most its weight, and the weight (IDF) of a common term
is small. MaxScore (Turtle & Flood 1995), done term-at-a-time so that numpy does the
loops:

1. Order the terms by upper bound, highest first (rare terms first). Keep the ``k``
   best exact scores found so far; the lowest of them is the threshold theta.
2. Take the terms in that order. A row first met in term j's list is in none of the
   earlier lists, so its score is at most its impact in j plus the bounds of the terms
   after j. Once the bounds of the remaining terms sum below theta, no unseen row can
   enter the top k: stop (the long, low-IDF lists are never read, only probed).
3. A list is read in blocks of ``BLOCK`` postings, best block bound first; a block
   whose bound plus the later terms' bounds is below theta is skipped unread.
4. A row that survives is looked up in the other lists (``np.searchsorted`` on their
   sorted rows): in an earlier list means it was already scored there (drop it); in a
   later list adds its impact, and the row is dropped as soon as its partial score
   plus the bounds of the lists not yet probed falls below theta.

Worked example (numbers as in the doctest of :func:`top_k`): "sparse" (weight 5.0) in
rows 3 and 7 with tf 1 and 2, "the" (weight 0.1) in rows 0..7 with tf 1, norm 1.0
everywhere, k = 1. "sparse" first: row 3 = 5.0 * 1/2 + 0.1 * 1/2 = 2.55, row 7 =
5.0 * 2/3 + 0.1 * 1/2 = 3.383; theta = 3.383. The bound of "the" alone is 0.1 < theta:
rows 0-2 and 4-6 (only in "the") are never scored; its postings are only probed for
rows 3 and 7.

Exactness: every impact is computed with the same expression as :func:`exhaustive`
and a row's terms are summed in the caller's term order starting from 0.0, as
``np.bincount`` does, so the scores are bit-identical to exhaustive scoring; bounds
are compared with a margin of ``_MARGIN`` (relative), so float rounding never prunes
a row that could tie the k-th score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 128  # postings per block of bounds
# A row is pruned when its bound is below theta * (1 - _MARGIN): well above the float64
# rounding of the sums (~1e-15) and of float32 (6e-8), so a pruned row's float32 score is
# strictly below the k-th one's.
_MARGIN = 2e-6


@dataclass
class TermPostings:
    """One query term's postings.

    ``bounds`` (optional): :func:`block_bounds` of this term for this ``norm``; the
    caller may cache it per term and per index snapshot (``norm`` changes with avgdl).
    Without it the bounds are computed when needed, reading the whole list once.
    """

    weight: float      # idf(term) times the term's count in the query
    rows: np.ndarray   # int64 global row ids, ascending (may be memory-mapped)
    tf: np.ndarray     # float32 term frequencies, same length
    bounds: np.ndarray | None = None  # float64 max of tf / (tf + norm) per BLOCK postings


def block_bounds(rows: np.ndarray, tf: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """The largest ``tf / (tf + norm[row])`` of each block of ``BLOCK`` postings.

    Times the term's weight, a block's bound is the most any of its rows can get from
    the term. About len(rows) / 128 floats: 1M postings -> 62 KB.

    >>> block_bounds(np.arange(3), np.array([1, 3, 1], np.float32), np.ones(3, np.float32))
    array([0.75])
    """
    if not len(rows):
        return np.zeros(0)
    ratio = _impact(1.0, tf, norm[rows])
    return np.maximum.reduceat(ratio, np.arange(0, len(rows), BLOCK))


def _impact(weight: float, tf: np.ndarray, nrm: np.ndarray) -> np.ndarray:
    """weight * tf / (tf + norm) in float64: the one expression both scorers use."""
    tf64 = tf.astype(np.float64)
    return weight * tf64 / (tf64 + nrm)


def exhaustive(terms: list[TermPostings], norm: np.ndarray, k: int,
               live: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The reference: score every posting (one ``np.bincount``), then take the k best."""
    terms = [t for t in terms if len(t.rows)]
    if not terms or k <= 0:
        return _empty()
    rows = np.concatenate([np.asarray(t.rows, np.int64) for t in terms])
    vals = np.concatenate([_impact(t.weight, np.asarray(t.tf), norm[np.asarray(t.rows)])
                           for t in terms])
    scores = np.bincount(rows, weights=vals, minlength=len(norm))
    hit = np.flatnonzero(scores > 0)
    if live is not None:
        hit = hit[live[hit]]
    return _select(hit, scores[hit], k)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.float32)


def _select(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (float32 score descending, then row ascending) of positive scores."""
    s32 = scores.astype(np.float32)
    keep = s32 > 0
    if len(s32) > k:
        kth = np.partition(s32, len(s32) - k)[len(s32) - k]
        keep &= s32 >= kth  # ties with the k-th are all kept; lexsort breaks them
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((rows[idx], -s32[idx]))[:k]]
    return rows[idx].astype(np.int64), s32[idx]


class _Heap:
    """The k best rows scored so far and theta, the k-th score (0 until k are found)."""

    def __init__(self, k: int):
        self.k = k
        self.rows = np.zeros(0, np.int64)
        self.scores = np.zeros(0, np.float64)
        self.cut = 0.0  # prune a bound below this

    def push(self, rows: np.ndarray, scores: np.ndarray) -> None:
        keep = scores >= self.cut
        rows = np.concatenate([self.rows, rows[keep]])
        scores = np.concatenate([self.scores, scores[keep]])
        if len(rows) > self.k:
            s32 = scores.astype(np.float32)
            idx = np.lexsort((rows, -s32))[:self.k]
            rows, scores = rows[idx], scores[idx]
        self.rows, self.scores = rows, scores
        if len(rows) >= self.k:
            self.cut = float(scores.min()) * (1 - _MARGIN)


def top_k(terms: list[TermPostings], norm: np.ndarray, k: int,
          live: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows and scores of the ``k`` best rows, best first (ties: lower row first);
    equal to :func:`exhaustive`. Rows that score 0 or are not ``live`` never come back.

    >>> norm = np.ones(8, np.float32)
    >>> sparse = TermPostings(5.0, np.array([3, 7]), np.array([1, 2], np.float32))
    >>> the = TermPostings(0.1, np.arange(8), np.ones(8, np.float32))
    >>> rows, scores = top_k([sparse, the], norm, 1)
    >>> rows.tolist(), [round(float(s), 3) for s in scores]
    ([7], [3.383])
    >>> top_k([sparse, the], norm, 3, live=norm.astype(bool) & (np.arange(8) != 7))[0]
    array([3, 0, 1])
    """
    if k <= 0:
        return _empty()
    terms = [t for t in terms if len(t.rows)]
    if any(t.weight < 0 for t in terms):  # bounds assume no term lowers a score
        return exhaustive(terms, norm, k, live)
    terms = [t for t in terms if t.weight > 0]
    if not terms:
        return _empty()
    ub = [_upper(t, norm) for t in terms]
    order = sorted(range(len(terms)), key=lambda i: -ub[i])
    # rest[j]: the most the terms after the j-th (in bound order) can add together
    rest = np.concatenate([np.cumsum([ub[i] for i in order][::-1])[::-1], [0.0]])[1:]
    rest = rest * (1 + _MARGIN)
    heap = _Heap(k)
    for j, i in enumerate(order):
        if ub[i] + rest[j] < heap.cut:
            break  # no row outside the lists already read can reach the top k
        _read_term(terms, order, j, rest, norm, live, heap)
    return _select(heap.rows, heap.scores, k)


def _upper(t: TermPostings, norm: np.ndarray) -> float:
    """The most the term adds to any row: weight * its largest block bound."""
    if t.bounds is None:
        t.bounds = block_bounds(np.asarray(t.rows), np.asarray(t.tf), norm)
    return float(t.weight * t.bounds.max()) * (1 + _MARGIN)


def _read_term(terms, order, j, rest, norm, live, heap) -> None:
    """Score the rows first met in the j-th list (bound order), best blocks first."""
    t = terms[order[j]]
    bounds = t.bounds
    by_bound = np.argsort(-bounds, kind="stable")
    n = len(t.rows)
    done, batch = 0, max(1, -(-heap.k // BLOCK))
    while done < len(by_bound):
        # blocks are sorted by bound: once one cannot reach theta, none after it can
        reach = t.weight * bounds[by_bound[done:]] + rest[j] >= heap.cut
        todo = int(np.count_nonzero(reach))
        if not todo:
            return
        blocks = np.sort(by_bound[done:done + min(batch, todo)])
        done += len(blocks)
        batch *= 2
        if len(blocks) * BLOCK >= n:
            pos = slice(None)
        else:
            pos = (blocks[:, None] * BLOCK + np.arange(BLOCK)).ravel()
            pos = pos[pos < n]
        rows = np.asarray(t.rows[pos], np.int64)
        imp = _impact(t.weight, np.asarray(t.tf[pos]), norm[rows])
        keep = imp + rest[j] >= heap.cut
        if live is not None:
            keep &= live[rows]
        _score(terms, order, j, rows[keep], imp[keep], rest, norm, heap)


def _score(terms, order, j, rows, imp, rest, norm, heap) -> None:
    """Exact scores of rows met first in list j: probe the other lists, prune, push."""
    if not len(rows):
        return
    alive = np.arange(len(rows))
    for i in order[:j]:  # met in an earlier list: scored (or pruned) there already
        found, _ = _probe(terms[i].rows, rows[alive])
        alive = alive[~found]
    contrib = {order[j]: (alive, imp[alive])}
    partial = imp[alive]
    for jj in range(j + 1, len(order)):
        keep = partial + rest[jj - 1] >= heap.cut
        alive, partial = alive[keep], partial[keep]
        if not len(alive):
            return
        t = terms[order[jj]]
        found, pos = _probe(t.rows, rows[alive])
        hit = alive[found]
        val = _impact(t.weight, np.asarray(t.tf[pos[found]]), norm[rows[hit]])
        contrib[order[jj]] = (hit, val)
        partial[found] += val
    keep = partial >= heap.cut
    alive = alive[keep]
    # Sum in the caller's term order from 0.0, as np.bincount in exhaustive() does.
    exact = np.zeros(len(rows))
    for i in sorted(contrib):
        idx, val = contrib[i]
        exact[idx] += val
    heap.push(rows[alive], exact[alive])


def _probe(sorted_rows: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(found, position) of each row in a sorted posting list."""
    pos = np.searchsorted(sorted_rows, rows)
    found = np.zeros(len(rows), bool)
    inside = pos < len(sorted_rows)
    found[inside] = np.asarray(sorted_rows[pos[inside]]) == rows[inside]
    return found, pos
