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
5. Probing costs ~1 us a row and list. When the rows still to probe would cost more
   than reading the essential lists (those that can still bring a new row to theta)
   into one float32 array over all rows, switch to that (:meth:`_Run.dense`): add those
   lists whole (rows already scored are set to -inf), raise theta from the partial sums
   (each is a lower bound of its row's score, so the k-th largest is a valid theta),
   take the rows whose partial sum plus the remaining bounds reaches theta, and finish
   them list by list (probe a list 10x longer than the candidates, else scan it),
   dropping rows whose bound falls below theta. The survivors are scored exactly.

Where the time goes (benchmarks/topk.py, 1M chunks, 3-20 term questions): probing the
rare terms' rows until theta is known, adding the essential mid-frequency lists
(~100-300k postings), and finishing ~50-200k candidates against the long lists; the
stop-word lists (~1M postings each) are only probed, for a few hundred rows.

Worked example (numbers as in the doctest of :func:`top_k`): "sparse" (weight 5.0) in
rows 3 and 7 with tf 1 and 2, "the" (weight 0.1) in rows 0..7 with tf 1, norm 1.0
everywhere, k = 1. "sparse" first: row 3 = 5.0 * 1/2 + 0.1 * 1/2 = 2.55, row 7 =
5.0 * 2/3 + 0.1 * 1/2 = 3.383; theta = 3.383. The bound of "the" alone is 0.1 < theta:
rows 0-2 and 4-6 (only in "the") are never scored; its postings are only probed for
rows 3 and 7.

Exactness: the rows that survive pruning are scored with the same float64 expression
as :func:`exhaustive`, their terms summed in the caller's term order starting from 0.0
as ``np.bincount`` does, so the scores are bit-identical to exhaustive scoring. Bounds
and partial sums, used only to prune, are float32 (half the memory traffic), compared
with a relative margin (``_margin``), so rounding never prunes a row that could tie the
k-th score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 128  # postings per block of bounds
# Bounds are inflated by _MARGIN (relative) against float64 rounding.
_MARGIN = 1e-6


def _margin(lists: int) -> float:
    """A row is pruned when its bound is below theta * (1 - margin). Partial sums are
    float32: each impact within ~2e-7 relative, a sum over n lists within n * 6e-8 more
    (all terms are positive); the margin is well above that, so a pruned row's float32
    score is strictly below the k-th one's."""
    return 1e-5 + 2e-7 * lists


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


def _bound(weight: float, tf: np.ndarray, nrm: np.ndarray) -> np.ndarray:
    """The same in float32, for bounds only (half the memory traffic of float64; each
    value within ~2e-7 relative; see :func:`_margin`)."""
    return np.float32(weight) * tf / (tf + nrm)


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
    """The k best rows scored exactly so far, and ``cut``: a bound below it is pruned.

    ``cut`` is theta (the k-th best score known) less the margin; theta may also come
    from :meth:`floor`, k distinct rows known to score at least that much."""

    def __init__(self, k: int, margin: float):
        self.k, self.margin = k, margin
        self.rows = np.zeros(0, np.int64)
        self.scores = np.zeros(0, np.float64)
        self.cut = 0.0

    def push(self, rows: np.ndarray, scores: np.ndarray) -> None:
        keep = scores >= self.cut
        rows = np.concatenate([self.rows, rows[keep]])
        scores = np.concatenate([self.scores, scores[keep]])
        if len(rows) > self.k:
            idx = np.lexsort((rows, -scores.astype(np.float32)))[:self.k]
            rows, scores = rows[idx], scores[idx]
        self.rows, self.scores = rows, scores
        self.floor(np.zeros(0))

    def floor(self, lower: np.ndarray) -> None:
        """Raise theta with lower bounds of rows that are not in the heap (one each)."""
        lower = lower[lower > self.cut]  # (any subset of the rows gives a valid theta)
        known = np.concatenate([self.scores, lower]) if len(lower) else self.scores
        if len(known) >= self.k:
            kth = np.partition(known, len(known) - self.k)[len(known) - self.k]
            self.cut = max(self.cut, float(kth) * (1 - self.margin))


def top_k(terms: list[TermPostings], norm: np.ndarray, k: int,
          live: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows and scores of the ``k`` best rows, best first (ties: lower row first);
    equal to :func:`exhaustive`. Rows that score 0 or are not ``live`` never come back.
    Fills in the ``bounds`` of the terms whose blocks it reads (keep them to reuse).

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
    given = [t for t in terms if t.weight > 0]
    terms = [_plain(t) for t in given]
    if not terms:
        return _empty()
    floor = float(norm.min())
    ub = [_upper(t, floor) for t in terms]
    run = _Run(terms, sorted(range(len(terms)), key=lambda i: -ub[i]), ub, norm, live, k)
    for j in range(len(terms)):
        if run.suffix[j] < run.heap.cut:
            break  # no row outside the lists already read can reach the top k
        left = run.read_term(j)
        if left is not None:  # too many rows to probe one by one: accumulate densely
            run.dense(j, left)
            break
    for t, plain in zip(given, terms, strict=True):
        t.bounds = plain.bounds
    return _select(run.heap.rows, run.heap.scores, k)


def _plain(t: TermPostings) -> TermPostings:
    """The term with plain ndarrays (np.memmap indexing costs ~3 us a call)."""
    return TermPostings(t.weight, np.asarray(t.rows), np.asarray(t.tf), t.bounds)


def _upper(t: TermPostings, floor: float) -> float:
    """The most the term adds to any row: weight * its largest block bound, or without
    bounds weight * tf / (tf + norm) at the largest tf and the smallest norm."""
    if t.bounds is not None:
        return float(t.weight * t.bounds.max()) * (1 + _MARGIN)
    most = float(t.tf.max())
    return t.weight * most / (most + floor) * (1 + _MARGIN)


# The cost model that picks a strategy, in nanoseconds at 1M rows: probing a row in the
# other lists (np.searchsorted alone is ~100-250 ns; 800 is what the whole probe path
# costs per row and list, fitted on benchmarks/topk.py), scanning a posting into the
# dense array (impact and scatter, ~5-10 ns), and per row of the index for the dense
# array itself (zeroing it, then finding its candidates: ~1 ms at 1M rows).
PROBE_NS, SCAN_NS, DENSE_NS_PER_ROW = 800, 8, 1.0
# A list is probed for the candidates when it is this many times longer than they are,
# else scanned whole.
SCAN_RATIO = 10


class _Run:
    """One top-k search: the terms in bound order, the heap, and the two strategies."""

    def __init__(self, terms, order, ub, norm, live, k):
        self.terms = [terms[i] for i in order]
        self.pos = order  # caller's position of each term (its summation order)
        ub = np.array([ub[i] for i in order])
        # suffix[j]: the most terms j, j+1, ... can add to one row together
        self.suffix = np.concatenate([np.cumsum(ub[::-1])[::-1], [0.0]]) * (1 + _MARGIN)
        self.norm, self.live, self.heap = norm, live, _Heap(k, _margin(len(terms)))
        self.read: list[np.ndarray] = []  # rows read so far from the current term

    def read_term(self, j: int):
        """Score the rows first met in list j, best blocks first, probing the others.
        None when done; the blocks left to read when they are too many to probe."""
        t, heap = self.terms[j], self.heap
        if t.bounds is None:  # its blocks are read one by one: worth their bounds
            t.bounds = block_bounds(t.rows, t.tf, self.norm)
        by_bound = np.argsort(-t.bounds, kind="stable")
        self.read = []
        done, batch = 0, max(2, -(-2 * heap.k // BLOCK))
        while done < len(by_bound):
            # blocks are sorted by bound: once one cannot reach theta, none after it can
            reach = t.weight * t.bounds[by_bound[done:]] + self.suffix[j + 1] >= heap.cut
            todo = int(np.count_nonzero(reach))
            if not todo:
                return None
            left = by_bound[done:done + todo]
            blocks = np.sort(left[:batch])
            # Probing the rows costs more than accumulating them densely: switch. (Until
            # theta is known, weigh only the next batch: it is what sets theta.)
            rows_next = (len(blocks) if len(heap.rows) < heap.k else todo) * BLOCK
            if rows_next * (len(self.terms) - 1) * PROBE_NS > self._dense_cost(j):
                return left
            done += len(blocks)
            batch *= 4
            rows, imp = self._blocks(t, blocks)
            self.read.append(rows)
            keep = imp + self.suffix[j + 1] >= heap.cut
            if self.live is not None:
                keep &= self.live[rows]
            self._score(j, rows[keep], imp[keep])
        return None

    def _dense_cost(self, j: int) -> float:
        """Nanoseconds :meth:`dense` would take from list j, roughly."""
        lists = sum(len(t.rows) for t, s in zip(self.terms[j:], self.suffix[j:], strict=False)
                    if s >= self.heap.cut)
        return len(self.norm) * DENSE_NS_PER_ROW + lists * SCAN_NS

    def _blocks(self, t: TermPostings, blocks: np.ndarray):
        """(rows, impacts) of the postings in these blocks (ascending block numbers)."""
        if len(blocks) * BLOCK >= len(t.rows):
            pos: slice | np.ndarray = slice(None)
        else:
            pos = (blocks[:, None] * BLOCK + np.arange(BLOCK)).ravel()
            pos = pos[pos < len(t.rows)]
        rows = t.rows[pos]
        return rows, _bound(t.weight, t.tf[pos], self.norm[rows])

    def _score(self, j: int, rows: np.ndarray, imp: np.ndarray) -> None:
        """Exact scores of rows met first in list j: probe the other lists, prune, push."""
        heap = self.heap
        for t in self.terms[:j]:  # met in an earlier list: scored (or pruned) there
            if not len(rows):
                return
            found, _ = _probe(t.rows, rows)
            rows, imp = rows[~found], imp[~found]
        partial = imp.copy()
        for jj in range(j + 1, len(self.terms)):
            keep = partial + self.suffix[jj] >= heap.cut
            rows, partial = rows[keep], partial[keep]
            if not len(rows):
                return
            t = self.terms[jj]
            found, at = _probe(t.rows, rows)
            partial[found] += _bound(t.weight, t.tf[at[found]], self.norm[rows[found]])
        rows = rows[partial >= heap.cut]
        heap.push(rows, self._exact(rows))

    def dense(self, j: int, left: np.ndarray) -> None:
        """Lists j (its ``left`` blocks) to the last: accumulate the essential ones into
        one array over all rows, then finish the rows that can still reach theta."""
        heap, terms = self.heap, self.terms
        acc = np.zeros(len(self.norm), np.float32)
        for rows in [t.rows for t in terms[:j]] + self.read:
            acc[rows] = -np.inf  # scored (or pruned) already, in probe mode
        jj, added = j, 0
        # The essential lists; then the next one if no longer than the postings added so
        # far (about the candidates there would be): scanning it is cheaper than finding
        # and filtering those candidates first, and it leaves fewer.
        while jj < len(terms):
            if jj > j and self.suffix[jj] < heap.cut and (
                    len(terms[jj].rows) > added or self.suffix[jj - 1] < heap.cut):
                break
            if jj == j:
                rows, imp = self._blocks(terms[j], np.sort(left))
            else:
                rows, imp = terms[jj].rows, _bound(terms[jj].weight, terms[jj].tf,
                                                   self.norm[terms[jj].rows])
            acc[rows] += imp
            added += len(rows)
            lower = acc[rows]
            heap.floor(lower if self.live is None else lower[self.live[rows]])
            jj += 1
        # Rows met only in the lists from jj on score at most suffix[jj] < theta.
        cand = np.flatnonzero(acc >= heap.cut - self.suffix[jj])
        if self.live is not None:
            cand = cand[self.live[cand]]
        for i in range(jj, len(terms)):
            cand = cand[acc[cand] + self.suffix[i] >= heap.cut]
            if not len(cand):
                return
            t = terms[i]
            if len(cand) * SCAN_RATIO < len(t.rows):
                found, at = _probe(t.rows, cand)
                acc[cand[found]] += _bound(t.weight, t.tf[at[found]], self.norm[cand[found]])
            else:
                acc[t.rows] += _bound(t.weight, t.tf, self.norm[t.rows])
            heap.floor(acc[cand])
        cand = cand[acc[cand] >= heap.cut]
        heap.push(cand, self._exact(cand))

    def _exact(self, rows: np.ndarray) -> np.ndarray:
        """Scores of these rows summed in the caller's term order from 0.0, as
        np.bincount in exhaustive() does: bit-identical to it."""
        out = np.zeros(len(rows))
        for j in np.argsort(self.pos, kind="stable"):
            t = self.terms[j]
            found, at = _probe(t.rows, rows)
            out[found] += _impact(t.weight, t.tf[at[found]], self.norm[rows[found]])
        return out


def _probe(sorted_rows: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(found, position) of each row in a sorted posting list."""
    pos = np.searchsorted(sorted_rows, rows)
    found = np.zeros(len(rows), bool)
    inside = pos < len(sorted_rows)
    found[inside] = sorted_rows[pos[inside]] == rows[inside]
    return found, pos
