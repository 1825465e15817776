"""BM25 over chunk texts: build the score matrix, save it, map it, score a question.

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

Every score(d, w) is computed once, at build time, into a sparse matrix stored by
word (CSC: the chunks that contain word w are ``indices[indptr[w]:indptr[w+1]]``,
their scores at the same positions of ``data``). A question then costs one slice
per term and one ``bincount``. The arrays are saved as plain ``.npy`` files and
memory-mapped by every query process. A test checks the scores against bm25s.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.text import ANALYZER, stem, words

# The saved layout and the analyzer that made the tokens: a cache of another format is
# rebuilt (bump the number for the layout, rag.text.ANALYZER for the tokens).
FORMAT = f"4.{ANALYZER}"
K1, B = 1.2, 0.75
BUILD_BUDGET = 128 * 2**20  # bytes the build may hold at once, roughly (see Builder)
# Working bytes per token while a segment is counted (its int32 id, then its int64 key
# beside the postings' keys), and per posting while the segments are merged (gathered
# word, row, tf, the sort order, the float64 score terms): the budget divided by these
# sizes a segment and a merge step. Measured: benchmarks/memory.py.
SEGMENT_BYTES_PER_TOKEN = 32
MERGE_BYTES_PER_POSTING = 64


def idf(n_docs: int, df):
    """Lucene's IDF (works on numbers and on numpy arrays alike)."""
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


@dataclass
class Lexical:
    """A BM25 index: the score matrix plus the chunk id and paper id of each row."""

    vocab: dict[str, int]  # stemmed term -> column
    data: np.ndarray      # float32 scores, grouped by word
    indices: np.ndarray   # int32 row of each score
    indptr: np.ndarray    # int64, len(vocab) + 1: where each word's scores start
    chunk_ids: np.ndarray  # of str, one per row
    paper_ids: np.ndarray  # of str, one per row
    generation: str

    def scores(self, query_terms: list[str]) -> np.ndarray:
        """BM25 score of every row for stemmed terms (:func:`rag.text.terms`; a repeated
        question term counts again)."""
        cols = [self.vocab[w] for w in query_terms if w in self.vocab]
        if not cols:
            return np.zeros(len(self.chunk_ids), dtype=np.float32)
        rows = np.concatenate([self.indices[self.indptr[c]:self.indptr[c + 1]] for c in cols])
        vals = np.concatenate([self.data[self.indptr[c]:self.indptr[c + 1]] for c in cols])
        return np.bincount(rows, weights=vals, minlength=len(self.chunk_ids)).astype(np.float32)

    def doc_freq(self, word: str) -> int:
        """Rows that contain the (stemmed) term; 0 for one the index has never seen."""
        col = self.vocab.get(word)
        return 0 if col is None else int(self.indptr[col + 1] - self.indptr[col])

    def idf(self, word: str) -> float:
        """The word's IDF in this index, as used in its scores."""
        return float(idf(len(self.chunk_ids), self.doc_freq(word)))


class Builder:
    """Collects chunk texts page by page as int32 term ids, then builds the matrix.

    Term ids, not strings: at 100k chunks the strings alone took 2 GB. The tokens are
    exactly :func:`rag.text.terms` of each text; each distinct surface word is stemmed
    once (``surface`` maps it to its term's id), not once per occurrence.

    Memory is set by ``budget`` (bytes), not by the corpus. When the chunks collected
    since the last segment would need more than the budget to count, they are counted
    into a segment: (word, row, tf) postings sorted by word, then row, written as .npy
    files to a temporary folder under ``workdir`` (the system's temp folder if that
    cannot be written; memory if no folder can). :meth:`build` merges the segments one
    word range at a time. Rows grow from segment to segment, so a range's postings,
    gathered segment by segment and stably sorted by word, are in the (word, row) order
    of a one-shot build; N, df and avgdl are known by then, so each range's scores are
    final when written. The scores equal a one-shot build's exactly (a test checks).
    The vocabulary dict is the one structure that grows with the corpus: it is the
    index's own size.
    """

    def __init__(self, budget: int = BUILD_BUDGET, workdir: Path | None = None):
        self.vocab: dict[str, int] = {}
        self.surface: dict[str, int] = {}
        self.tokens: list[np.ndarray] = []  # the current segment's chunks, their ids below
        self.chunk_ids: list[str] = []
        self.paper_ids: list[str] = []
        self.budget, self.workdir = budget, workdir
        self.rows = 0  # chunks in the segments so far
        self.segments: list[dict] = []  # name -> _Spilled .npy file (or the array itself)
        self._pending = 0  # tokens in the current segment
        self._lengths: list[np.ndarray] = []  # tokens per chunk, one array per segment
        self._df = np.zeros(0, dtype=np.int64)  # chunks per word, over the segments
        self._spill: Path | None = None  # the spill folder (None: not made, or none can be)
        self._spill_tried = False

    def add(self, chunk_ids: list[str], paper_ids: list[str], texts: list[str]) -> None:
        vocab, surface = self.vocab, self.surface
        for text in texts:
            ids = []
            for w in words(text):
                col = surface.get(w)
                if col is None:
                    col = surface[w] = vocab.setdefault(stem(w), len(vocab))
                ids.append(col)
            self.tokens.append(np.array(ids, dtype=np.int32))
        self.chunk_ids += chunk_ids
        self.paper_ids += paper_ids
        self._pending += sum(len(t) for t in self.tokens[len(self.tokens) - len(texts):])
        # ~200 bytes per chunk on top of its tokens: the array object and the two ids.
        if self._pending * SEGMENT_BYTES_PER_TOKEN + len(self.tokens) * 200 >= self.budget:
            self._flush()

    def _flush(self) -> None:
        """Count the current chunks into one segment of sorted postings and spill it."""
        n = len(self.tokens)
        if not n:
            return
        lengths = np.fromiter(map(len, self.tokens), dtype=np.int32, count=n)
        # One key per token, word * n + chunk; sorting groups the keys by word, then
        # chunk (the CSC order), and each run of equal keys is one posting, its length
        # the term frequency. In place where numpy allows: at the peak, the int64 keys
        # of the tokens and two int64 arrays of postings (~24 bytes a token).
        key = np.empty(int(lengths.sum(dtype=np.int64)), dtype=np.int64)
        np.concatenate(self.tokens, out=key)
        self.tokens = []
        key *= n
        key += np.repeat(np.arange(n, dtype=np.int32), lengths)
        key.sort()
        first = np.empty(key.size, dtype=bool)  # where a run of equal keys starts
        first[:1] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        del first
        tfs = np.empty(starts.size, dtype=np.int32)
        np.subtract(starts[1:], starts[:-1], out=tfs[:-1], casting="unsafe")
        tfs[-1:] = key.size - starts[-1:]
        key = key[starts]
        del starts
        cols = np.empty(key.size, dtype=np.int32)
        rows = np.empty(key.size, dtype=np.int32)
        np.floor_divide(key, n, out=cols, casting="unsafe")
        np.remainder(key, n, out=rows, casting="unsafe")
        rows += self.rows
        del key
        df = np.zeros(len(self.vocab), dtype=np.int64)
        df[:len(self._df)] = self._df
        self._df = df + np.bincount(cols, minlength=len(self.vocab))
        self.segments.append(self._store({
            "cols": cols, "rows": rows, "tfs": tfs,
            "chunk_ids": np.array(self.chunk_ids), "paper_ids": np.array(self.paper_ids)}))
        self._lengths.append(lengths)
        self.rows += n
        self.chunk_ids, self.paper_ids, self._pending = [], [], 0

    def _store(self, arrays: dict[str, np.ndarray]) -> dict:
        """A segment's arrays as .npy files in the spill folder (in memory if none)."""
        folder = self._spill_folder()
        if folder is not None:
            try:
                return {name: _Spilled.write(folder / f"{len(self.segments):06d}-{name}.npy", a)
                        for name, a in arrays.items()}
            except OSError:
                pass  # a full disk: this segment stays in memory
        return arrays

    def _spill_folder(self) -> Path | None:
        if not self._spill_tried:
            self._spill_tried = True
            for parent in (self.workdir, None):  # None: the system's temp folder
                try:
                    if parent is not None:
                        parent.mkdir(parents=True, exist_ok=True)
                    self._spill = Path(tempfile.mkdtemp(prefix="lexical-build-", dir=parent))
                    # Removed with the builder even if build() is never reached.
                    weakref.finalize(self, shutil.rmtree, self._spill, True)
                    break
                except OSError:
                    continue
        return self._spill

    def close(self) -> None:
        """Remove the spilled segments (build() does, when it is done)."""
        if self._spill:
            shutil.rmtree(self._spill, ignore_errors=True)
        self.segments, self._spill, self._spill_tried = [], None, False

    def build(self, generation: str, folder: Path | None = None) -> Lexical | None:
        """The index, written into ``folder`` (as :func:`save` would) and memory-mapped
        from there, or in memory when ``folder`` is None or cannot be written. None when
        no chunk was added. The builder is spent afterwards."""
        try:
            self._flush()
            if not self.rows:
                return None
            lengths = np.concatenate(self._lengths)
            avgdl = max(int(lengths.sum(dtype=np.int64)) / self.rows, 1e-9)
            df = np.zeros(len(self.vocab), dtype=np.int64)
            df[:len(self._df)] = self._df
            indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
            weights = idf(self.rows, df)
            if folder is not None:
                try:
                    self._write(folder, generation, indptr,
                                self._postings(indptr, weights, lengths, avgdl))
                    lex = load(folder, generation)
                    if lex is not None:
                        return lex
                except OSError:
                    pass  # a read-only or full disk: build it in memory instead
                shutil.rmtree(folder, ignore_errors=True)
            data, rows = [np.zeros(0, np.float32)], [np.zeros(0, np.int32)]
            for d, r in self._postings(indptr, weights, lengths, avgdl):
                data.append(d)
                rows.append(r)
            return Lexical(dict(self.vocab), np.concatenate(data), np.concatenate(rows), indptr,
                           self._ids("chunk_ids"), self._ids("paper_ids"), generation)
        finally:
            self.close()

    def _postings(self, indptr, weights, lengths, avgdl):
        """(scores, rows) of one word range after another, in CSC order.

        A range holds about budget / MERGE_BYTES_PER_POSTING postings (one word at
        least). Its slice of each segment is read from the spill file (plain reads, not
        a long-lived map, so only the range is ever resident).
        """
        step = max(1, self.budget // MERGE_BYTES_PER_POSTING)
        n_words, bounds = len(indptr) - 1, [0]
        while bounds[-1] < n_words:
            w0 = bounds[-1]
            w1 = int(np.searchsorted(indptr, indptr[w0] + step, side="right")) - 1
            bounds.append(min(max(w1, w0 + 1), n_words))
        # Where each range starts and ends in each segment (its postings are sorted by word).
        cuts = [np.searchsorted(_array(seg["cols"], mmap=True), bounds) for seg in self.segments]
        for k in range(len(bounds) - 1):
            parts = [[_array(seg[name], lo=c[k], hi=c[k + 1]) for name in ("cols", "rows", "tfs")]
                     for seg, c in zip(self.segments, cuts, strict=False) if c[k + 1] > c[k]]
            if not parts:
                continue
            col, row, tf = (np.concatenate([p[n] for p in parts]) for n in range(3))
            del parts
            if len(self.segments) > 1:
                order = np.argsort(col, kind="stable")  # segments are in row order
                col, row, tf = col[order], row[order], tf[order]
            norm = K1 * (1 - B + B * lengths[row] / avgdl)
            yield (weights[col] * tf / (tf + norm)).astype(np.float32), row

    def _write(self, folder: Path, generation: str, indptr: np.ndarray, postings) -> None:
        """Stream the index into ``folder``: plain writes, so nothing of it stays resident."""
        folder.mkdir(parents=True, exist_ok=True)
        nnz = int(indptr[-1])
        with _npy(folder / "data.npy", np.float32, nnz) as data, \
                _npy(folder / "indices.npy", np.int32, nnz) as rows:
            for d, r in postings:
                data.write(d.data)
                rows.write(r.data)
        np.save(folder / "indptr.npy", indptr, allow_pickle=False)
        for name in ("chunk_ids", "paper_ids"):
            dtype = np.result_type(*(seg[name].dtype for seg in self.segments))
            with _npy(folder / f"{name}.npy", dtype, self.rows) as fh:
                for seg in self.segments:
                    fh.write(np.ascontiguousarray(_array(seg[name]), dtype).data)
        _write_meta(folder, self.vocab, generation, self.rows)

    def _ids(self, name: str) -> np.ndarray:
        return np.concatenate([_array(seg[name]) for seg in self.segments])


@dataclass(frozen=True)
class _Spilled:
    """One array of a segment, spilled to a .npy file: where its values start."""

    path: Path
    dtype: np.dtype
    offset: int  # bytes of .npy header before the values
    length: int

    @classmethod
    def write(cls, path: Path, array: np.ndarray) -> _Spilled:
        with _npy(path, array.dtype, len(array)) as fh:
            offset = fh.tell()
            fh.write(np.ascontiguousarray(array).data)
        return cls(path, array.dtype, offset, len(array))


def _array(value, lo: int = 0, hi: int | None = None, mmap: bool = False) -> np.ndarray:
    """Values lo:hi of a segment's array: read from its spill file (or mapped, for a
    search that touches a few pages), or sliced from the array kept in memory."""
    if not isinstance(value, _Spilled):
        return value[lo:hi]
    hi = value.length if hi is None else int(hi)
    if mmap and value.length:  # (an empty file cannot be mapped)
        return np.memmap(value.path, value.dtype, "r", value.offset, (value.length,))[lo:hi]
    return np.fromfile(value.path, value.dtype, hi - int(lo),
                       offset=value.offset + int(lo) * value.dtype.itemsize)


def _npy(path: Path, dtype, length: int):
    """A file holding a 1-D .npy header; the caller writes the ``length`` values after it."""
    fh = open(path, "wb")  # noqa: SIM115 (the caller writes the values and closes it)
    np.lib.format.write_array_header_1_0(fh, {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
        "shape": (length,)})
    return fh


def _write_meta(folder: Path, vocab: dict, generation: str, chunks: int) -> None:
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "manifest.json").write_text(json.dumps(
        {"generation": generation, "format": FORMAT, "chunks": chunks}))

def save(lex: Lexical, folder: Path) -> None:
    """Write the index to ``folder`` (plain .npy arrays and JSON, nothing pickled)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("data", "indices", "indptr", "chunk_ids", "paper_ids"):
        np.save(folder / f"{name}.npy", getattr(lex, name), allow_pickle=False)
    _write_meta(folder, lex.vocab, lex.generation, len(lex.chunk_ids))


def load(folder: Path, generation: str) -> Lexical | None:
    """The saved index, memory-mapped; None when it is missing, damaged or stale."""
    try:
        info = json.loads((folder / "manifest.json").read_text())
        if info.get("generation") != generation or info.get("format") != FORMAT:
            return None

        def arr(name, mmap=True):
            return np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None,
                           allow_pickle=False)

        return Lexical(json.loads((folder / "vocab.json").read_text()), arr("data"),
                       arr("indices"), arr("indptr"), arr("chunk_ids", False),
                       arr("paper_ids", False), generation)
    except (OSError, ValueError, KeyError, AttributeError):
        return None  # a damaged cache is rebuilt by the caller
