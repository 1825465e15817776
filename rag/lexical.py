"""BM25 over chunk texts, read side: a snapshot of the segments a manifest lists.

The scoring is Lucene's BM25 (as in bm25s, Elasticsearch and Lucene itself), with
Lucene's defaults k1 = 1.2 and b = 0.75, over Snowball-stemmed words
(:func:`rag.text.terms`: "proposes" and "proposed" are one term, "propos"), the way
Lucene's English analyzer and bm25s with PyStemmer tokenize. For a term w and a chunk d::

    idf(w)      = ln(1 + (N - df(w) + 0.5) / (df(w) + 0.5))
    score(d, w) = idf(w) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))

Worked example: N = 1,406 chunks, "sparsity" in df = 9 of them, so idf =
ln(1 + 1397.5 / 9.5) = 5.00. In a chunk of |d| = 60 words (avgdl = 75) that uses
it tf = 2 times: 5.00 * 2 / (2 + 1.2 * (0.25 + 0.75 * 0.8)) = 5.00 * 2 / 3.02 = 3.31.
A question's score for a chunk is the sum over its terms.

The index is a list of immutable *segments* (:mod:`rag.segments` writes them), one per
ingest (or per merge of several): postings by term (rows ascending, term frequencies),
document lengths, chunk and paper ids. A chunk replaced or deleted later is marked in a
deletion file beside its segment, not rewritten. N, avgdl and df change with every
segment, so segments keep tf and lengths, not scores: the scores are computed at query
time with the collection-wide statistics of the snapshot, deletions excluded, and so
equal those of one index built from scratch over the live chunks. ``norm[row] = k1 * (1
- b + b * |d| / avgdl)`` is computed once per snapshot, so a posting costs one divide.

A *manifest* (``manifest.json``, replaced atomically) lists the live segments and their
deletion files, and the generation of the collection it covers; a reader opens it once
per snapshot and maps the segments' ``.npy`` arrays. Rows: a segment's *global* rows
are its offset (the rows of the segments before it, in manifest order) plus its local
rows. The public rows (``chunk_ids``, ``paper_ids``, what :meth:`Lexical.top` returns)
number the live chunks only, in global order.
"""

from __future__ import annotations

import bisect
import importlib.util
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import numpy as np

from rag import topk_scan
from rag.text import ANALYZER
from rag.topk import TermPostings, top_k

# The saved layout and the analyzer that made the tokens: a cache of another format is
# rebuilt (bump the number for the layout, rag.text.ANALYZER for the tokens).
FORMAT = f"5.{ANALYZER}"
K1, B = 1.2, 0.75
BUILD_BUDGET = 128 * 2**20  # bytes a build or a merge may hold at once, roughly
MANIFEST = "manifest.json"
# Postings a snapshot keeps concatenated over its segments for recent questions' terms
# (see Lexical.query): 8M postings are ~100 MB (int64 row, float32 tf).
TERM_CACHE_POSTINGS = 8_000_000
# From this many rows (chunks) on, a question is scored by scanning its postings in
# compiled code (rag.topk_scan) rather than by pruning in numpy (rag.topk): see
# benchmarks/topk.py for the crossing point.
SCAN_ROWS = 200_000
# ... once the process has spent this long scoring such an index in numpy: a one-question
# `ask` (30-60 ms of BM25 at 1M chunks) never loads numba (~0.6 s, once per process);
# the UI, the API or an eval run loads it in the background after a few questions.
SCAN_AFTER_S = 0.3
# Term lookups a segment remembers (a dict entry each, ~100 bytes).
LOOKUPS_KEPT = 100_000
# The arrays of a segment folder (see rag.segments for how they are written).
SEGMENT_ARRAYS = ("terms", "term_starts", "indptr", "rows", "tf", "lengths", "chunk_ids",
                  "paper_ids", "batch", "record", "dates", "sources")


def idf(n_docs: int, df):
    """Lucene's IDF (works on numbers and on numpy arrays alike)."""
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


class _Terms:
    """A segment's sorted terms as a sequence of UTF-8 bytes, read from the mapped blob
    (for :func:`bisect.bisect_left`: no vocabulary dict is built to open a segment)."""

    def __init__(self, blob: np.ndarray, starts: np.ndarray):
        self.blob, self.starts = blob, starts

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, i: int) -> bytes:
        return self.blob[self.starts[i]:self.starts[i + 1] - 1].tobytes()

    def all(self) -> list[str]:
        """Every term, in order (a merge reads them all)."""
        text = self.blob.tobytes().decode()
        return text.split("\n") if len(self) else []


@dataclass
class Segment:
    """One segment folder, memory-mapped (see :data:`SEGMENT_ARRAYS`)."""

    name: str
    arrays: dict[str, np.ndarray]

    @classmethod
    def open(cls, folder: Path) -> Segment:
        arrays = {}
        for name in SEGMENT_ARRAYS:
            path = folder / f"{name}.npy"
            # An empty array cannot be mapped; small ones are not worth it.
            big = path.stat().st_size > 4096
            arrays[name] = np.load(path, mmap_mode="r" if big else None, allow_pickle=False)
        return cls(folder.name, arrays)

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["arrays"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def n_rows(self) -> int:
        return len(self.arrays["lengths"])

    @cached_property
    def terms_seq(self) -> _Terms:
        return _Terms(self.arrays["terms"], self.arrays["term_starts"])

    def lookup(self, term: str) -> int:
        """The term's local id, or -1 (remembered: a binary search over the mapped terms
        reads ~20 of them, ~1 ms for a question's terms at 1M chunks)."""
        known = self.__dict__.setdefault("_ids", {})
        i = known.get(term)
        if i is None:
            key, seq = term.encode(), self.terms_seq
            i = bisect.bisect_left(seq, key)
            i = i if i < len(seq) and seq[i] == key else -1
            if len(known) >= LOOKUPS_KEPT:
                known.clear()
            known[term] = i
        return i

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(local rows, tf) of the term (empty arrays when it is not in this segment)."""
        t = self.lookup(term)
        if t < 0:
            return self.arrays["rows"][:0], self.arrays["tf"][:0]
        lo, hi = int(self.indptr[t]), int(self.indptr[t + 1])
        return self.arrays["rows"][lo:hi], self.arrays["tf"][lo:hi]


def read_manifest(folder: Path) -> dict | None:
    """The manifest in ``folder`` if it is of this format, else None."""
    try:
        info = json.loads((folder / MANIFEST).read_text())
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            return None
        return info
    except (OSError, ValueError):
        return None


class Lexical:
    """A snapshot of the index: the segments of one manifest and their statistics."""

    def __init__(self, folder: Path | None, info: dict, segments: list[Segment],
                 deleted: list[np.ndarray | None]):
        self.folder, self.info = folder, info
        self.generation: str = info.get("generation", "")
        self.segments, self.deleted = segments, deleted
        sizes = [s.n_rows for s in segments]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.live = np.concatenate([np.ones(0, bool)] + [
            np.ones(s.n_rows, bool) if d is None else ~d for s, d in zip(segments, deleted,
                                                                          strict=True)])
        self.n_live = int(self.live.sum())
        lengths = np.concatenate([np.zeros(0, np.int32)] + [s.lengths for s in segments])
        self.avgdl = max(float(lengths[self.live].sum(dtype=np.int64)) / max(self.n_live, 1),
                         1e-9)
        # k1 * (1 - b + b * |d| / avgdl) of every global row: a posting's score is then
        # weight * tf / (tf + norm[row]).
        self.norm = K1 * (1 - B + B * lengths / self.avgdl)
        self._df: dict[str, int] = {}
        # term -> (global rows, tf, block bounds or None), for the terms of recent
        # questions: concatenated over the segments once per snapshot, and rag.topk's
        # block bounds (they depend on norm, so on the snapshot) computed once.
        self._terms: dict[str, list] = {}
        self._cached_postings = 0
        # Zeroed float32 accumulators for rag.topk_scan, one per question in flight.
        self._scratch: list[np.ndarray] = []
        self._scratch_lock = threading.Lock()
        self._numpy_seconds = 0.0  # spent in numpy scoring while the scan was not loaded

    # --- rows ---------------------------------------------------------------------------
    @cached_property
    def live_rows(self) -> np.ndarray:
        """Global row of each public row."""
        return np.flatnonzero(self.live)

    @cached_property
    def public(self) -> np.ndarray:
        """Public row of each global row (-1 for a deleted one)."""
        out = np.cumsum(self.live, dtype=np.int64) - 1
        out[~self.live] = -1
        return out

    def _column(self, name: str) -> np.ndarray:
        parts = [s.arrays[name] if d is None else s.arrays[name][~d]
                 for s, d in zip(self.segments, self.deleted, strict=True)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype="U1")

    @cached_property
    def chunk_ids(self) -> np.ndarray:
        return self._column("chunk_ids")

    @cached_property
    def paper_ids(self) -> np.ndarray:
        return self._column("paper_ids")

    def papers(self, rows: np.ndarray) -> list[str]:
        """The paper id of each public row, read from the segments' mapped arrays (the
        whole ``paper_ids`` column is not built for a question's few rows)."""
        glob = self.live_rows[np.asarray(rows, dtype=np.int64)]
        seg = np.searchsorted(self.offsets, glob, side="right") - 1
        return [str(self.segments[s].paper_ids[g - self.offsets[s]])
                for s, g in zip(seg.tolist(), glob.tolist(), strict=True)]

    def facets(self) -> tuple[Counter, Counter]:
        """(stored ``dates`` value -> papers, ``sources`` value -> papers) over the live
        paper records."""
        dates, sources = Counter[str](), Counter[str](),
        for s, d in zip(self.segments, self.deleted, strict=True):
            keep = np.asarray(s.record, dtype=bool) if d is None else (s.record & ~d)
            for counter, name in ((dates, "dates"), (sources, "sources")):
                values, counts = np.unique(s.arrays[name][keep], return_counts=True)
                counter.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        return dates, sources

    # --- terms --------------------------------------------------------------------------
    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(global rows ascending, tf) of the term over all segments, deleted rows too."""
        rows, tfs = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
        for seg, off in zip(self.segments, self.offsets.tolist(), strict=False):
            r, tf = seg.postings(term)
            if len(r):
                rows.append(r.astype(np.int64) + off)
                tfs.append(tf)
        return np.concatenate(rows), np.concatenate(tfs)

    def doc_freq(self, word: str) -> int:
        """Live rows that contain the (stemmed) term; 0 for one the index has never seen."""
        df = self._df.get(word)
        if df is None:
            df = 0
            for seg, d in zip(self.segments, self.deleted, strict=True):
                rows, _ = seg.postings(word)
                df += len(rows) if d is None else int(np.count_nonzero(~d[rows]))
            self._df[word] = df
        return df

    def idf(self, word: str) -> float:
        """The word's IDF in this index, as used in its scores."""
        return float(idf(self.n_live, self.doc_freq(word)))

    def rows_of(self, word: str) -> np.ndarray:
        """The public rows that contain the term."""
        rows, _ = self.postings(word)
        return self.public[rows[self.live[rows]]]

    def query(self, query_terms: list[str]) -> list[TermPostings]:
        """One :class:`rag.topk.TermPostings` per distinct known term (a repeated
        question term counts again: its weight is its IDF times its count)."""
        return [t for _, t in self._query(query_terms)]

    def _query(self, query_terms: list[str]) -> list[tuple[list, TermPostings]]:
        out = []
        if self._cached_postings > TERM_CACHE_POSTINGS:
            self._terms.clear()
            self._cached_postings = 0
        for term, count in Counter(query_terms).items():
            df = self.doc_freq(term)
            if df:
                got = self._terms.get(term)
                if got is None:
                    got = self._terms[term] = [*self.postings(term), None]
                    self._cached_postings += len(got[0])
                out.append((got, TermPostings(float(idf(self.n_live, df)) * count, got[0],
                                              got[1], got[2])))
        return out

    # --- scoring ------------------------------------------------------------------------
    def scores(self, query_terms: list[str]) -> np.ndarray:
        """BM25 score of every public row (exhaustive; for checks and small indexes)."""
        total = np.zeros(len(self.live), dtype=np.float64)
        for t in self.query(query_terms):
            total += np.bincount(t.rows, weights=t.weight * t.tf / (t.tf + self.norm[t.rows]),
                                 minlength=len(total))
        return total[self.live]

    def top(self, query_terms: list[str], k: int,
            allowed_rows_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best public rows with a score above 0 and their scores, best first
        (ties: lower row first); ``allowed_rows_mask``: a bool per public row."""
        live = self.live
        if allowed_rows_mask is not None:
            live = np.zeros_like(self.live)
            live[self.live_rows[np.asarray(allowed_rows_mask, dtype=bool)]] = True
        if len(self.live) >= SCAN_ROWS and _numba_installed():
            if topk_scan.ready():
                return self._scan_top(query_terms, k, live)
            if self._numpy_seconds > SCAN_AFTER_S:
                # This process asks many questions: load the scan for the next ones.
                topk_scan.load_in_background()
            started = time.perf_counter()
            try:
                return self._numpy_top(query_terms, k, live)
            finally:
                self._numpy_seconds += time.perf_counter() - started
        return self._numpy_top(query_terms, k, live)

    def _numpy_top(self, query_terms: list[str], k: int,
                   live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`top` by :func:`rag.topk.top_k`'s pruning in numpy."""
        pairs = self._query(query_terms)
        if not pairs or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        rows, scores = top_k([t for _, t in pairs], self.norm, k, live)
        for entry, t in pairs:
            entry[2] = t.bounds  # computed by the first question (the entry is shared)
        return self.public[rows], scores

    # --- the compiled scan (large indexes) ---------------------------------------------
    @cached_property
    def _norm32(self) -> np.ndarray:
        """``norm`` in float32, for the scan's approximate pass."""
        return self.norm.astype(np.float32)

    def _scan_top(self, query_terms: list[str], k: int,
                  live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`top` by :func:`rag.topk_scan.scan_top` (compiled, for large indexes)."""
        counts = Counter(t for t in query_terms if self.doc_freq(t))
        if not counts or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        known = list(counts)
        weight = np.array([float(idf(self.n_live, self.doc_freq(t))) * counts[t]
                           for t in known])
        spans = [self._spans(seg, known) for seg in self.segments]
        with self._scratch_lock:
            acc = self._scratch.pop() if self._scratch else np.zeros(len(self.norm),
                                                                     np.float32)
        try:
            rows, scores = topk_scan.scan_top(spans, self.offsets[:-1], weight,
                                              self.norm, self._norm32, live, k, acc)
        finally:  # scan_top leaves acc zeroed, even when it raises
            with self._scratch_lock:
                self._scratch.append(acc)
        return self.public[rows], scores

    def _spans(self, seg: Segment, known: list[str]):
        """(rows, tf, lo, hi) of the terms in one segment: its whole postings arrays and
        each term's span in them (empty for a term it lacks)."""
        ids = [seg.lookup(term) for term in known]
        indptr = seg.indptr
        lo = np.array([indptr[t] if t >= 0 else 0 for t in ids], np.int64)
        hi = np.array([indptr[t + 1] if t >= 0 else 0 for t in ids], np.int64)
        return np.asarray(seg.rows), np.asarray(seg.tf), lo, hi


@cache
def _numba_installed() -> bool:
    """Whether the compiled scan can run (numba is a dependency; without it, as in a
    trimmed install, large indexes are scored by the numpy path, slower but exact)."""
    return importlib.util.find_spec("numba") is not None


def open_snapshot(folder: Path, info: dict) -> Lexical | None:
    """The segments the manifest ``info`` lists, mapped; None when one is missing or
    damaged (a merge that has since removed it: the caller reads the manifest again)."""
    try:
        segments, deleted = [], []
        for entry in info["segments"]:
            segments.append(Segment.open(folder / entry["name"]))
            dele = entry.get("deleted")
            deleted.append(None if not dele else np.load(folder / dele, allow_pickle=False))
            if deleted[-1] is not None and len(deleted[-1]) != segments[-1].n_rows:
                return None
        return Lexical(folder, info, segments, deleted)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def load(folder: Path, generation: str | None = None) -> Lexical | None:
    """The saved index, memory-mapped; None when it is missing, damaged, of another
    format, or (``generation`` given) of another generation."""
    for _ in range(3):  # a merge may remove a segment between the manifest and the open
        info = read_manifest(folder)
        if info is None or (generation is not None and info.get("generation") != generation):
            return None
        lex = open_snapshot(folder, info)
        if lex is not None:
            return lex
    return None
