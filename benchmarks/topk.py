"""Lexical scoring at 1M chunks: pruned top-k (rag.topk) and the compiled scan
(rag.topk_scan) next to exhaustive scoring.

    python benchmarks/topk.py                  # 1M chunks, 300 questions, k = 100
    python benchmarks/topk.py --rows 100000    # a quicker look

Issue 23's bar: lexical scoring p95 <= 15 ms at 1M chunks. The index is synthetic,
generated directly as postings (no text): chunk lengths 60-200 terms, a Zipfian
vocabulary of 300k terms (exponent 1: the commonest term is in nearly every chunk, as
"the" is), term frequencies 1 + Poisson. It is written once to ``--cache`` and
memory-mapped, as the real index is. Questions mix the kinds of terms real questions
have: stop words and common words (ranks < 100), general words (100-3k), topic words
(3k-50k) and rare names (50k+), 3 to 20 terms.

Four columns, each over the same questions:

- ``before``: rag.lexical before the segments: precomputed float32 scores, one
  ``np.bincount`` over every posting of the question's terms, then the best ``k``.
- ``exhaustive``: rag.topk.exhaustive, the exactness reference (impacts computed at
  query time from tf and norm, as the segmented index stores them).
- ``top_k cold``: rag.topk.top_k with no cached block bounds (the first question
  with these terms after an ingest).
- ``top_k warm``: block bounds cached per term (what a caller keeps per index snapshot).
- ``scan``: rag.topk_scan.scan_top, the compiled scan rag.lexical uses from
  ``SCAN_ROWS`` chunks on (compiled before the timing).

Every top_k answer is checked against exhaustive (same rows, scores to 1e-6), every scan
answer bit for bit.
Wall time and the process's CPU time are both shown: on a machine shared with other
work the wall time includes waiting for a core; the CPU time is the scorer's own cost.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

from rag.lexical import K1, B, idf
from rag.topk import TermPostings, block_bounds, exhaustive, top_k
from rag.topk_scan import scan_top


def generate(n: int, vocab: int, seed: int, folder: Path) -> None:
    """Write rows.npy (int64), tf.npy (float32), indptr.npy, lengths.npy to ``folder``."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(60, 201, n)
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    common = int(np.searchsorted(-p * lengths.max(), -0.02))  # terms met by chance in a chunk
    parts_rows, parts_tf, df = [], [], np.zeros(vocab, np.int64)
    for w in range(common):  # each chunk has the term with probability 1 - exp(-p * len)
        lam = p[w] * lengths
        rows = np.flatnonzero(rng.random(n) < -np.expm1(-lam))
        parts_rows.append(rows)
        parts_tf.append(1 + rng.poisson(lam[rows]))
        df[w] = len(rows)
    # Rare terms all at once: df ~ Poisson(p * tokens), rows uniform, tf 1 (+ a rare 2).
    rare_df = rng.poisson(p[common:] * lengths.sum())
    words = np.repeat(np.arange(common, vocab), rare_df)
    key = np.unique(words * n + rng.integers(0, n, len(words)))
    words, rows = key // n, key % n
    del key
    df[common:] = np.bincount(words - common, minlength=vocab - common)
    parts_rows.append(rows)
    parts_tf.append(1 + (rng.random(len(rows)) < 0.05))
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "rows.npy", np.concatenate(parts_rows).astype(np.int64))
    np.save(folder / "tf.npy", np.concatenate(parts_tf).astype(np.float32))
    np.save(folder / "indptr.npy", np.concatenate([[0], np.cumsum(df)]))
    np.save(folder / "lengths.npy", lengths)


def questions(rng, count: int, vocab: int) -> list[np.ndarray]:
    """Term ids of ``count`` questions, 3-20 terms each, by rank band (see module doc)."""
    bands = [(0, 100, 0.4), (100, 3000, 0.3), (3000, 50_000, 0.25), (50_000, vocab, 0.05)]
    out = []
    for _ in range(count):
        size = int(rng.integers(3, 21))
        band = rng.choice(len(bands), size, p=[b[2] for b in bands])
        lo = np.array([bands[b][0] for b in band]) + 1
        hi = np.array([bands[b][1] for b in band])
        out.append((np.exp(rng.uniform(np.log(lo), np.log(hi))) - 1).astype(np.int64))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--vocab", type=int, default=300_000)
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("-k", type=int, default=100, help="the retriever's depth (candidates)")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/topk-bench"))
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).parent / "results" / "topk.md",
                    help="where the printed figures are also written (markdown)")
    args = ap.parse_args()
    out = _Tee()
    with contextlib.redirect_stdout(out):
        measure(args)
    args.out.write_text(
        f"# Lexical scoring: pruned top-k and the compiled scan vs exhaustive\n\n"
        f"{dt.date.today()}, "
        f"`python benchmarks/topk.py {' '.join(sys.argv[1:])}`\n\n```\n{out.getvalue()}```\n")


class _Tee(io.StringIO):
    """Prints what it is given and keeps it."""

    def __init__(self):
        super().__init__()
        self.echo = sys.stdout

    def write(self, s: str) -> int:
        self.echo.write(s)
        self.echo.flush()
        return super().write(s)


def measure(args) -> None:
    folder = args.cache / f"{args.rows}-{args.vocab}-{args.seed}"
    if not (folder / "lengths.npy").exists():
        t = _now()
        generate(args.rows, args.vocab, args.seed, folder)
        print(f"generated {folder} in {_since(t)[0]:.0f} s")
    rows, tf, indptr, lengths = (np.load(folder / f"{name}.npy", mmap_mode="r")
                                 for name in ("rows", "tf", "indptr", "lengths"))
    n = len(lengths)
    df = np.diff(indptr)
    norm = (K1 * (1 - B + B * lengths / lengths.mean())).astype(np.float32)
    print(f"{n:,} chunks, {len(rows):,} postings, {args.questions} questions, k = {args.k}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results = run(args, rows, tf, indptr, df, norm)
    show(results)


def run(args, rows, tf, indptr, df, norm) -> dict[str, list[tuple[float, float]]]:
    """Time every scorer on every question (interleaved); check top_k against exhaustive."""
    n = len(norm)
    bounds: dict[int, np.ndarray] = {}
    times: dict[str, list[tuple[float, float]]] = {
        "before": [], "exhaustive": [], "top_k cold": [], "top_k warm": [], "scan": []}
    touched = []
    norm64, live = norm.astype(np.float64), np.ones(n, bool)
    acc = np.zeros(n, np.float32)
    scan_top(*_scan_args([0], rows, tf, indptr, weights=np.ones(1)), norm64, norm, live,
             args.k, acc)  # compiled (or loaded from numba's cache) before the timing
    for ids in questions(np.random.default_rng(args.seed + 1), args.questions, len(df)):
        ids, counts = np.unique(ids, return_counts=True)
        weights = idf(n, df[ids]) * counts

        def postings(warm, ids=ids, weights=weights):
            out = []
            for w, weight in zip(ids, weights, strict=True):
                a, b = indptr[w], indptr[w + 1]
                out.append(TermPostings(float(weight), rows[a:b], tf[a:b],
                                        bounds.get(w) if warm else None))
            return out

        # before: precomputed scores (computed outside the timing), bincount, _best
        cols = [(rows[indptr[w]:indptr[w + 1]].astype(np.int32),
                 (weight * tf[indptr[w]:indptr[w + 1]]
                  / (tf[indptr[w]:indptr[w + 1]] + norm[rows[indptr[w]:indptr[w + 1]]]))
                 .astype(np.float32)) for w, weight in zip(ids, weights, strict=True)]
        t = _now()
        scores = np.bincount(np.concatenate([c[0] for c in cols]),
                             weights=np.concatenate([c[1] for c in cols]),
                             minlength=n).astype(np.float32)
        best = _best(scores, args.k)
        best = best[scores[best] > 0]
        times["before"].append(_since(t))
        t = _now()
        want = exhaustive(postings(False), norm, args.k)
        times["exhaustive"].append(_since(t))
        for name, warm in (("top_k cold", False), ("top_k warm", True)):
            if warm:
                for w in ids:
                    if w not in bounds:
                        bounds[w] = block_bounds(rows[indptr[w]:indptr[w + 1]],
                                                 tf[indptr[w]:indptr[w + 1]], norm)
            t = _now()
            got = top_k(postings(warm), norm, args.k)
            times[name].append(_since(t))
            assert got[0].tolist() == want[0].tolist(), ids
            np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
        t = _now()
        got = scan_top(*_scan_args(ids, rows, tf, indptr, weights), norm64, norm, live,
                       args.k, acc)
        times["scan"].append(_since(t))
        assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
        touched.append(int(sum(df[ids])))
    print(f"postings per question: median {np.median(touched):,.0f}, "
          f"p95 {np.percentile(touched, 95):,.0f}")
    return times


def _scan_args(ids, rows, tf, indptr, weights):
    """rag.topk_scan.scan_top's spans, offsets and weights for one segment."""
    lo, hi = np.asarray(indptr[ids], np.int64), np.asarray(indptr[np.asarray(ids) + 1], np.int64)
    return [(np.asarray(rows), np.asarray(tf), lo, hi)], np.zeros(1, np.int64), weights


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest scores, best first (ties: lower position first):
    the retriever's selection before the segments."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.lexsort((top, -scores[top]))]


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since ``start``."""
    wall, cpu = _now()
    return wall - start[0], cpu - start[1]


def show(times: dict[str, list[tuple[float, float]]]) -> None:
    print(f"{'ms':12} {'median':>8} {'p95':>8} {'CPU median':>11} {'CPU p95':>8} "
          f"{'p95 exhaustive/this':>20}")
    base = np.percentile(np.array(times["exhaustive"])[:, 0], 95)
    for name, values in times.items():
        v = np.array(values) * 1000
        wall, cpu = v[:, 0], v[:, 1]
        print(f"{name:12} {np.median(wall):8.2f} {np.percentile(wall, 95):8.2f} "
              f"{np.median(cpu):11.2f} {np.percentile(cpu, 95):8.2f} "
              f"{base * 1000 / np.percentile(wall, 95):19.1f}x")


if __name__ == "__main__":
    main()
