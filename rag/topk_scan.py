"""Exact BM25 top-k by scanning every posting, compiled (numba): the large-index path.

:mod:`rag.topk` prunes in numpy, term at a time (MaxScore): every step is a
whole-array operation, so a row costs a few microseconds in each list it is probed in.
That pays when the rare terms of a question settle its top k. It does not when a
question's terms are all mid-frequency: in the 1M-paper benchmark corpus (sentences of
358 abstracts recombined) a question's lists hold 4M postings, the k-th score is ~9,
and the lists of the common terms add up to ~8 of it, so nearly every row of the rarer
lists stays a candidate and must be probed in the common ones: 25-60 ms a question.
Scanning the postings in compiled code costs ~1.5 ns a posting (4M: ~6 ms) whatever the
question, so from :data:`rag.lexical.SCAN_ROWS` rows on this is the path.

Two passes:

1. **Approximate**, float32: ``acc[row] += weight * tf / (tf + norm[row])`` over the
   postings of every term but the *tail*, the commonest terms (lowest weights) up to
   :data:`TAIL_SHARE` of the question's weights. One pass over ``acc`` then keeps the k
   best rows in a heap, and as candidates every row within the margin of the heap's
   lowest value *plus the tail's weights*: a term adds less than its weight to a row
   (tf / (tf + norm) < 1), so a row further below cannot reach the top k. The
   candidates are probed in the tail's lists (a forward search), highest weight first,
   each dropped once the lists left cannot lift it to the cut. (When the candidates are
   too many to probe, or fewer than k rows lie outside the tail, the tail is scanned
   like the rest.) ``acc`` is zeroed for the next question.
2. **Exact**, float64: the candidates within the margin of the k-th approximate score
   are scored again in the caller's term order, starting from 0.0, with
   :func:`rag.topk._impact`'s expression: the sums ``np.bincount`` makes in
   :func:`rag.topk.exhaustive`, bit for bit; then the k best (:func:`rag.topk._select`).

Why the margin keeps it exact: each float32 impact is within ~6e-8 relative of the true
one and a sum of n positive impacts within n * 6e-8 more, so a row whose true score
ties the true k-th score has an approximate one at least ``a_k * (1 - margin)``, where
``a_k`` is the k-th approximate score and margin = :func:`rag.topk._margin` (1e-5 +
2e-7 n, far above the rounding). Worked example: k = 2, approximate scores 9.0000,
8.99995, 8.9999 and 5.0, n = 3 terms: margin = 1.06e-5, a_k = 8.99995, cut =
8.99995 * (1 - 1.06e-5) = 8.99985: the first three rows are candidates, the fourth is
not; the exact pass decides between rows two and three.
"""

from __future__ import annotations

import threading

import numpy as np

from rag.topk import _margin, _select

# The tail (see scan_top): the commonest terms, up to this share of the question's
# weights, are probed rather than scanned (at 1M chunks, 240 questions: 0.03, 0.06 and
# 0.1 within noise of each other, 0.15 slower, 0 the slowest); probing a row in a list
# costs about this many times scanning a posting (a forward search against one add).
TAIL_SHARE = 0.06
PROBE_OVER_SCAN = 25

def kernels():
    """(accumulate, select, probe) of :mod:`rag.topk_kernels`, imported on first use:
    importing numba costs ~0.3 s, which an index below the scan size (scored by
    :mod:`rag.topk` in numpy) never pays."""
    from rag import topk_kernels

    return topk_kernels.accumulate, topk_kernels.select, topk_kernels.probe


# Loading the kernels (numba's import, then its disk cache: ~0.6 s; compiling them the
# first time after an install: ~5 s) is paid once per process, in the background: until
# it is done, large indexes are scored in numpy (see rag.lexical.Lexical.top). Process-
# wide, as the compiled code itself is.
_loaded = threading.Event()
_loading = threading.Lock()
_started: list[threading.Thread] = []


def ready() -> bool:
    """Whether the kernels are loaded (the scan can run without waiting)."""
    return _loaded.is_set()


def load_in_background() -> None:
    """Start loading the kernels in a daemon thread, once per process."""
    with _loading:
        if _started:
            return
        _started.append(threading.Thread(target=_load_quietly, name="abstracta-scan-load",
                                          daemon=True))
    _started[0].start()


def _load_quietly() -> None:
    try:
        load()
    except Exception:  # noqa: BLE001  (numba unusable here: the numpy path goes on)
        return


def load() -> None:
    """Import the kernels and bring in (from numba's cache, or by compiling) every
    version the scan calls: read-only postings (memory-mapped segments) and writable
    ones (small segments are read into memory), the float32 probe of a tail and the
    float64 one of the exact pass; then :func:`ready` is true."""
    n = 200
    for writable in (False, True):
        # A rare term in row 5 and a common one in every row, 1% of the weight: a tail.
        rows = np.concatenate([[5], np.arange(n)]).astype(np.int32)
        tf = np.ones(len(rows), np.float32)
        rows.setflags(write=writable)
        tf.setflags(write=writable)
        norm = np.ones(n)
        scan_top([(rows, tf, np.array([0, 1]), np.array([1, n + 1]))], np.zeros(1, np.int64),
                 np.array([1.0, 0.01]), norm, norm.astype(np.float32), np.ones(n, bool), 1,
                 np.zeros(n, np.float32))
    _loaded.set()


def scan_top(spans, offsets, weight, norm, norm32, live, k, acc):
    """The k best global rows and their exact scores, best first (ties: lower row
    first): :func:`rag.topk.exhaustive`'s answer.

    ``spans``: per segment (rows, tf, lo, hi), its postings arrays and each term's span
    in them (lo = hi for a term it lacks); ``offsets``: each segment's first global row;
    ``weight``: each term's IDF times its count, in the caller's term order; ``norm``
    (float64) and ``norm32`` (float32) per global row; ``live``: a bool per global row;
    ``acc``: a zeroed float32 array of one per global row, zeroed again on return.

    The tail: the terms of lowest weight (the longest lists), while they add up to at
    most :data:`TAIL_SHARE` of the weights, are not scanned. A term adds at most its
    weight to a row (tf / (tf + norm) <= 1; it rounds to 1.0 when norm is tiny next to
    tf, which is why the slack is inflated by 1e-5), so a row whose score without them
    is below the k-th such score less their weights cannot reach the top k: only the
    rows within that slack are probed in the tail's lists. When they are too many, the
    tail is scanned too.

    The weights must be positive and moderate (1e-30 to 1e30): a float32 impact of a
    smaller one rounds to 0, of a larger one overflows. BM25's IDFs (at most ~ln N,
    times a term's count in the question) always are.
    """
    if k <= 0 or not len(weight):
        return _select(np.zeros(0, np.int64), np.zeros(0), 1)
    accumulate, select, probe = kernels()
    margin = _margin(len(weight))
    by_weight = np.argsort(weight, kind="stable")
    n_tail = int(np.searchsorted(np.cumsum(weight[by_weight]), TAIL_SHARE * weight.sum(),
                                 side="right"))
    tail = np.zeros(len(weight), bool)
    tail[by_weight[:n_tail]] = True
    each = _Segments(spans, offsets, weight)
    try:
        each(~tail, accumulate, norm32, acc)
        slack = float(weight[tail].sum()) * (1 + 1e-5)
        cand, vals, cut = select(acc, live, k, margin, slack)
        tail_postings = sum(int((hi - lo)[tail].sum()) for _, _, lo, hi in spans)
        if n_tail and (cut <= slack or len(cand) * n_tail * PROBE_OVER_SCAN > tail_postings):
            # Too many rows to probe, or rows only the tail holds may reach the top k
            # (fewer than k rows outside it, or its weights as much as their k-th
            # score): scan the tail too.
            each(tail, accumulate, norm32, acc)
            n_tail = 0
            cand, vals, cut = select(acc, live, k, margin, 0.0)
    finally:
        acc.fill(0)
    if n_tail:
        cand, vals = _probe_tail(each, by_weight[:n_tail][::-1], norm32, cand, vals, cut)
        if len(vals) > k:
            kth = np.partition(vals, len(vals) - k)[len(vals) - k]
            cand = cand[vals >= kth * np.float32(1 - margin)]
    scores = np.zeros(len(cand))
    each(np.ones(len(weight), bool), probe, norm, cand, scores)  # the caller's order
    return _select(cand, scores, k)


class _Segments:
    """Calls a kernel on each segment's postings for the terms picked (a bool per term)."""

    def __init__(self, spans, offsets, weight):
        self.spans, self.offsets, self.weight = spans, offsets, weight

    def __call__(self, pick, kernel, norm, *args) -> None:
        for (rows, tf, lo, hi), off in zip(self.spans, self.offsets, strict=True):
            kernel(rows, tf, lo[pick], hi[pick], self.weight[pick], norm, int(off), *args)


def _probe_tail(each: _Segments, order, norm32, cand, vals, cut):
    """The candidates' values with the tail's impacts added, its lists taken in
    ``order`` (highest weight first); a row is dropped as soon as what the lists not
    yet probed could add cannot lift it to the cut."""
    probe = kernels()[2]
    weight = each.weight
    rest = np.cumsum(weight[order][::-1])[::-1] * (1 + 1e-5)
    for i, term in enumerate(order):
        pick = np.zeros(len(weight), bool)
        pick[term] = True
        each(pick, probe, norm32, cand, vals)
        keep = vals + (rest[i + 1] if i + 1 < len(order) else 0.0) >= cut
        cand, vals = cand[keep], vals[keep]
    return cand, vals
