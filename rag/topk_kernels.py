"""The compiled loops of :mod:`rag.topk_scan` (numba; see that module for the algorithm).

Importing this module imports numba (~0.3 s) and defines the kernels; numba compiles
each on its first call (~5 s for all, once: the machine code is kept in numba's disk
cache, in ``__pycache__`` beside this file or the user's cache folder). Only
:func:`rag.topk_scan.kernels` imports it, when an index is large enough to be scanned.
"""

from __future__ import annotations

import numba
import numpy as np


def _cache_works() -> bool:
    """Whether numba can keep compiled code on disk here (it raises at decoration when
    it finds no writable folder for it: then every process compiles again)."""
    try:
        numba.njit(cache=True)(_cache_works_probe)
    except RuntimeError:
        return False
    return True


def _cache_works_probe() -> int:
    return 0


_jit = numba.njit(cache=_cache_works(), nogil=True, boundscheck=False)


@_jit
def accumulate(rows, tf, lo, hi, weight, norm32, offset, acc):
    """The approximate pass over one segment: the terms' postings ``rows[lo[i]:hi[i]]``
    (local rows; ``offset`` makes them global) into the float32 ``acc``. (No branch in
    the loop: a table of 1 / (1 + norm) for the postings with tf = 1, 88% of them, made
    it 3x slower, the branch being mispredicted on the rest.)"""
    for i in range(len(lo)):
        w = np.float32(weight[i])
        for p in range(lo[i], hi[i]):
            r = offset + rows[p]
            t = tf[p]
            acc[r] += w * t / (t + norm32[r])


@_jit
def select(acc, live, k, margin, slack):
    """The rows of ``acc`` (live ones) that may be among the k best, ascending, and their
    values: the k best and every row within ``margin`` of the k-th, or within ``slack``
    more (the most the lists not yet added can add to a row); and the cut, the k-th value
    less the margin (0 when fewer than k rows have one)."""
    heap = np.zeros(k, np.float32)  # min-heap of the k best approximate values
    size = 0
    slack32 = np.float32(slack)  # (rounded: the margin, 1e-5 relative, covers it)
    cut = np.float32(0)
    low = -slack32  # cut - slack: a row below it is no candidate
    out = np.empty(4 * k + 64, np.int64)
    val = np.empty(4 * k + 64, np.float32)
    found = 0
    for r in range(len(acc)):
        v = acc[r]
        # Once the heap is full nearly every row is below the cut: test that first (a
        # test of v > 0 first is a coin toss the branch predictor loses).
        if v < low or v <= 0 or not live[r]:
            continue
        if found == len(out):  # keep the rows still within reach, and grow if need be
            found = _keep(out, val, found, low)
            if found > len(out) // 2:
                out = np.concatenate((out, np.empty(len(out), np.int64)))
                val = np.concatenate((val, np.empty(len(val), np.float32)))
        out[found] = r
        val[found] = v
        found += 1
        if size < k or v > heap[0]:
            size = _push(heap, size, v)
            if size == k:
                cut = np.float32(heap[0] * (1 - margin))
                low = cut - slack32
    kept = _keep(out, val, found, low)
    order = np.argsort(out[:kept])
    return out[:kept][order], val[:kept][order], cut


@_jit
def _keep(out, val, found, low):
    """Move the first ``found`` entries with a value of at least ``low`` to the front;
    their count."""
    kept = 0
    for c in range(found):
        if val[c] >= low:
            out[kept] = out[c]
            val[kept] = val[c]
            kept += 1
    return kept


@_jit
def _push(heap, size, v):
    """Put ``v`` in the min-heap of ``len(heap)`` values: added while it has room, else
    in place of the lowest (the caller checked ``v`` is higher). The new size."""
    k = len(heap)
    if size < k:
        j = size
        heap[j] = v
        while j > 0 and heap[(j - 1) >> 1] > heap[j]:
            par = (j - 1) >> 1
            heap[par], heap[j] = heap[j], heap[par]
            j = par
        return size + 1
    heap[0] = v
    j = 0
    while True:
        a = 2 * j + 1
        if a >= k:
            break
        if a + 1 < k and heap[a + 1] < heap[a]:
            a += 1
        if heap[a] >= heap[j]:
            break
        heap[a], heap[j] = heap[j], heap[a]
        j = a
    return size


@_jit
def probe(rows, tf, lo, hi, weight, norm, offset, cand, out):
    """``out[c] += impact`` of each term, in the order given, for the candidates (global
    rows, ascending) that fall in this segment: a forward search in each list, as the
    candidates ascend. With float64 ``norm`` and ``out`` and the caller's term order,
    the exact pass; with float32, the tail lists' part of the approximate one."""
    for i in range(len(lo)):
        a = lo[i]
        end = hi[i]
        for c in range(len(cand)):
            r = cand[c] - offset
            if r < 0:
                continue
            # gallop from the last position, then binary search
            step = 1
            b = a
            while b < end and rows[b] < r:
                a = b + 1
                b = a + step
                step *= 2
            b = min(b, end)
            while a < b:
                m = (a + b) >> 1
                if rows[m] < r:
                    a = m + 1
                else:
                    b = m
            if a == end:
                break
            if rows[a] == r:
                t = np.float64(tf[a])
                out[c] += weight[i] * t / (t + norm[cand[c]])
