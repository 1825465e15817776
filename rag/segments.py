"""BM25 segments, write side: count chunk texts into a segment, merge segments, mark
deletions, swap the manifest, remove what no manifest lists (read side: rag.lexical).

A segment folder holds plain ``.npy`` arrays (:data:`rag.lexical.SEGMENT_ARRAYS`):

- ``terms`` (UTF-8 bytes of the sorted terms, newline-separated) and ``term_starts``
  (where each starts): a term's local id is its position in sorted order, found by
  bisection, so no vocabulary dict is built to open a segment, and the ids of two
  segments map into a merged segment's monotonically (a merge streams term ranges);
- ``indptr`` (int64, terms + 1), ``rows`` (int32 local rows, ascending per term) and
  ``tf`` (float32): the postings, grouped by term;
- ``lengths`` (int32 tokens per chunk), ``chunk_ids``, ``paper_ids``, ``batch`` (the
  ingest batch that wrote the chunk), and for the facets ``record`` (the chunk carries
  its paper's record), ``dates`` and ``sources`` (the record's stored values).

Memory is set by ``budget`` (bytes), not by the corpus: the :class:`Builder` counts the
chunks collected since its last spill into sorted (term, row, tf) postings spilled to
disk; writing the segment (and merging segments) streams one term range at a time, each
range's postings gathered from every source in row order. The arrays are written into
a folder (or kept in memory when no folder can be written: the cache is an optimisation).
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import uuid
import weakref
from pathlib import Path

import numpy as np

from rag.files import write_atomic
from rag.lexical import BUILD_BUDGET, FORMAT, MANIFEST, Segment
from rag.text import stem, words

# Working bytes per token while a spill is counted (its int32 id, then its int64 key
# beside the postings' keys), and per posting while ranges are merged (gathered term,
# row, tf, the sort order): the budget divided by these sizes a spill and a merge step.
# Measured: benchmarks/memory.py.
SPILL_BYTES_PER_TOKEN = 32
MERGE_BYTES_PER_POSTING = 48
COLUMNS = ("chunk_ids", "paper_ids", "batch", "record", "dates", "sources")
_HEADER = 128  # bytes of the fixed .npy header a streamed array starts with


class _Stream:
    """A 1-D ``.npy`` file written in pieces; its length is put in the header at close."""

    def __init__(self, path: Path, dtype):
        self.fh, self.dtype, self.length = open(path, "wb"), np.dtype(dtype), 0  # noqa: SIM115
        self.fh.write(_npy_header(self.dtype, 0))

    def write(self, values: np.ndarray) -> None:
        self.fh.write(np.ascontiguousarray(values, dtype=self.dtype).data)
        self.length += len(values)

    def close(self) -> None:
        self.fh.seek(0)
        self.fh.write(_npy_header(self.dtype, self.length))
        self.fh.close()


def _npy_header(dtype: np.dtype, length: int) -> bytes:
    """A version 1.0 .npy header padded to :data:`_HEADER` bytes (so a streamed file's
    length can be filled in afterwards without moving its values)."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (
        np.lib.format.dtype_to_descr(dtype), length)
    text = text.ljust(_HEADER - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


class Sink:
    """Where a segment's arrays go: a folder of .npy files, or a dict (``folder`` None)."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.arrays: dict[str, np.ndarray] = {}
        self._parts: dict[str, list[np.ndarray]] = {}
        self._streams: dict[str, _Stream] = {}
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def append(self, name: str, values: np.ndarray, dtype) -> None:
        if self.folder is None:
            self._parts.setdefault(name, []).append(np.asarray(values, dtype=dtype))
            return
        if name not in self._streams:
            self._streams[name] = _Stream(self.folder / f"{name}.npy", dtype)
        self._streams[name].write(values)

    def save(self, name: str, values: np.ndarray) -> None:
        if self.folder is None:
            self.arrays[name] = values
        else:
            np.save(self.folder / f"{name}.npy", values, allow_pickle=False)

    def close(self, meta: dict) -> Segment | None:
        """The segment in memory (folder None), else None once its files are written."""
        for stream in self._streams.values():
            stream.close()
        if self.folder is None:
            for name, parts in self._parts.items():
                self.arrays[name] = np.concatenate(parts)
            return Segment(f"memory-{uuid.uuid4().hex[:8]}", self.arrays)
        (self.folder / "meta.json").write_text(json.dumps(meta))
        return None


def _save_terms(sink: Sink, terms: list[str]) -> None:
    """The sorted terms, newline-separated (terms are words: no whitespace), and where
    each starts: term i is ``blob[starts[i]:starts[i + 1] - 1]``."""
    encoded = [t.encode() for t in terms]
    starts = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) + 1 for e in encoded], out=starts[1:])
    sink.save("terms", np.frombuffer(b"\n".join(encoded), dtype=np.uint8).copy())
    sink.save("term_starts", starts)


def _range_bounds(per_term: np.ndarray, budget: int) -> list[int]:
    """Term ranges of about budget / MERGE_BYTES_PER_POSTING postings (one term at least)."""
    step = max(1, budget // MERGE_BYTES_PER_POSTING)
    cum = np.concatenate([[0], np.cumsum(per_term, dtype=np.int64)])
    n_terms, bounds = len(per_term), [0]
    while bounds[-1] < n_terms:
        w0 = bounds[-1]
        w1 = int(np.searchsorted(cum, cum[w0] + step, side="right")) - 1
        bounds.append(min(max(w1, w0 + 1), n_terms))
    return bounds


def write_postings(sink: Sink, sources: list, per_term: np.ndarray, budget: int) -> None:
    """Stream the postings of ``sources`` (each: ``cut(bounds)`` -> positions,
    ``read(lo, hi)`` -> (output term, output row, tf) sorted by term then row; sources
    in row order) into ``rows``, ``tf`` and ``indptr``, one term range at a time."""
    bounds = _range_bounds(per_term, budget)
    cuts = [src.cut(bounds) for src in sources]
    df = np.zeros(len(per_term), dtype=np.int64)
    sink.append("rows", np.zeros(0, np.int32), np.int32)
    sink.append("tf", np.zeros(0, np.float32), np.float32)
    for k in range(len(bounds) - 1):
        parts = [src.read(c[k], c[k + 1]) for src, c in zip(sources, cuts, strict=True)
                 if c[k + 1] > c[k]]
        if not parts:
            continue
        term, row, tf = (np.concatenate([p[n] for p in parts]) for n in range(3))
        del parts
        order = np.argsort(term, kind="stable")  # sources are in row order
        sink.append("rows", row[order], np.int32)
        sink.append("tf", tf[order], np.float32)
        df[bounds[k]:bounds[k + 1]] += np.bincount(term - bounds[k],
                                                   minlength=bounds[k + 1] - bounds[k])
    sink.save("indptr", np.concatenate([[0], np.cumsum(df)]).astype(np.int64))


class _Spill:
    """A Builder's spilled postings (builder term ids), read back in output term order."""

    def __init__(self, arrays: dict, rank: np.ndarray):
        # Spilled in builder id order; sorted again (one spill at a time, so within the
        # budget) by output term, which is the sorted order of the terms.
        cols, rows, tfs = (_read(arrays[n]) for n in ("cols", "rows", "tfs"))
        order = np.lexsort((rows, rank[cols]))
        self.arrays = dict(arrays)
        for name, values in (("cols", cols), ("rows", rows), ("tfs", tfs)):
            old = arrays[name]
            sorted_ = values[order]
            self.arrays[name] = (_Spilled.write(old.path, sorted_) if isinstance(old, _Spilled)
                                 else sorted_)
        self.rank = rank

    def cut(self, bounds: list[int]) -> np.ndarray:
        return np.searchsorted(self.rank[_read(self.arrays["cols"])], bounds)

    def read(self, lo: int, hi: int):
        a = self.arrays
        return (self.rank[_read(a["cols"], lo, hi)], _read(a["rows"], lo, hi),
                _read(a["tfs"], lo, hi))


class Builder:
    """Collects chunk texts page by page as int32 term ids, then writes a segment.

    Term ids, not strings: at 100k chunks the strings alone took 2 GB. The tokens are
    exactly :func:`rag.text.terms` of each text; each distinct surface word is stemmed
    once (``surface`` maps it to its term's id), not once per occurrence. When the chunks
    collected since the last spill would need more than the budget to count, they are
    counted into (term, row, tf) postings and spilled to a temporary folder under
    ``workdir`` (the system's temp folder if that cannot be written; memory if none can).
    """

    def __init__(self, budget: int = BUILD_BUDGET, workdir: Path | None = None):
        self.vocab: dict[str, int] = {}
        self.surface: dict[str, int] = {}
        self.tokens: list[np.ndarray] = []
        self.columns: dict[str, list] = {name: [] for name in COLUMNS}
        self.budget, self.workdir = budget, workdir
        self.rows = 0  # chunks in the spills so far
        self.spills: list[dict] = []  # name -> _Spilled file (or the array itself)
        self._pending = 0
        self._spill: Path | None = None
        self._spill_tried = False

    def add(self, chunk_ids: list[str], paper_ids: list[str], texts: list[str],
            batch: list[int] | None = None, record: list[bool] | None = None,
            dates: list[str] | None = None, sources: list[str] | None = None,
            analyzed: list[list[str]] | None = None) -> None:
        """``analyzed``: :func:`rag.text.words` of each text, when the caller has them
        (an ingest's worker processes do: see :mod:`rag.store.prepared`)."""
        surface = self.surface
        for i, text in enumerate(texts):
            ws = words(text) if analyzed is None else analyzed[i]
            # New words first (a set difference, in C), then one C-level pass of lookups.
            for w in set(ws).difference(surface):
                surface[w] = self.vocab.setdefault(stem(w), len(self.vocab))
            ids = np.fromiter(map(surface.__getitem__, ws), dtype=np.int32, count=len(ws))
            self.tokens.append(ids)
            self._pending += len(ids)
        n = len(texts)
        for name, values, default in (
                ("chunk_ids", chunk_ids, ""), ("paper_ids", paper_ids, ""), ("batch", batch, 0),
                ("record", record, False), ("dates", dates, ""), ("sources", sources, "")):
            self.columns[name] += list(values) if values is not None else [default] * n
        # ~200 bytes per chunk on top of its tokens: the array object and its ids.
        if self._pending * SPILL_BYTES_PER_TOKEN + len(self.tokens) * 200 >= self.budget:
            self._flush()

    def pending_rows(self) -> int:
        """Chunks added since the last spill."""
        return len(self.tokens)

    def _flush(self) -> None:
        """Count the current chunks into sorted (term, row, tf) postings and spill them."""
        n = len(self.tokens)
        if not n:
            return
        lengths = np.fromiter(map(len, self.tokens), dtype=np.int32, count=n)
        # One key per token, term * n + chunk; sorting groups the keys by term, then
        # chunk, and each run of equal keys is one posting, its length the tf.
        key = np.empty(int(lengths.sum(dtype=np.int64)), dtype=np.int64)
        np.concatenate(self.tokens, out=key)
        self.tokens = []
        key *= n
        key += np.repeat(np.arange(n, dtype=np.int64), lengths)
        key.sort()
        first = np.empty(key.size, dtype=bool)
        first[:1] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        del first
        tfs = np.empty(starts.size, dtype=np.int32)
        np.subtract(starts[1:], starts[:-1], out=tfs[:-1], casting="unsafe")
        tfs[-1:] = key.size - starts[-1:]
        key = key[starts]
        del starts
        arrays = {"cols": (key // n).astype(np.int32), "rows": (key % n + self.rows).astype(
            np.int32), "tfs": tfs, "lengths": lengths}
        del key
        for name in COLUMNS:
            arrays[name] = np.array(self.columns[name]) if self.columns[name] else np.zeros(
                0, dtype="U1")
            self.columns[name] = []
        arrays["batch"] = arrays["batch"].astype(np.int64)
        arrays["record"] = arrays["record"].astype(bool)
        self.spills.append(self._store(arrays))
        self.rows += n
        self._pending = 0

    def _store(self, arrays: dict[str, np.ndarray]) -> dict:
        folder = self._spill_folder()
        if folder is not None:
            try:
                return {name: _Spilled.write(folder / f"{len(self.spills):06d}-{name}.npy", a)
                        for name, a in arrays.items()}
            except OSError:
                pass  # a full disk: this spill stays in memory
        return arrays

    def _spill_folder(self) -> Path | None:
        if not self._spill_tried:
            self._spill_tried = True
            for parent in (self.workdir, None):  # None: the system's temp folder
                try:
                    if parent is not None:
                        parent.mkdir(parents=True, exist_ok=True)
                    self._spill = Path(tempfile.mkdtemp(prefix="lexical-build-", dir=parent))
                    weakref.finalize(self, shutil.rmtree, self._spill, True)
                    break
                except OSError:
                    continue
        return self._spill

    def close(self) -> None:
        """Remove the spills (write() does, when it is done)."""
        if self._spill:
            shutil.rmtree(self._spill, ignore_errors=True)
        self.spills, self._spill, self._spill_tried = [], None, False

    def write(self, folder: Path | None) -> Segment | None:
        """Write the segment into ``folder`` (None: in memory, returned). Raises OSError
        when the folder cannot be written. The builder is spent afterwards."""
        try:
            self._flush()
            terms = sorted(self.vocab)
            rank = np.empty(len(terms), dtype=np.int64)
            rank[np.fromiter((self.vocab[t] for t in terms), np.int64, len(terms))] = \
                np.arange(len(terms))
            sink = Sink(folder)
            _save_terms(sink, terms)
            per_term = np.zeros(len(terms), dtype=np.int64)
            for spill in self.spills:
                per_term += np.bincount(rank[_read(spill["cols"])], minlength=len(terms))
            write_postings(sink, [_Spill(s, rank) for s in self.spills], per_term, self.budget)
            tokens = 0
            for name in ("lengths", *COLUMNS):
                parts = [_read(s[name]) for s in self.spills]
                values = np.concatenate(parts) if parts else np.zeros(0, np.int32)
                tokens += int(values.sum(dtype=np.int64)) if name == "lengths" else 0
                sink.save(name, values)
            return sink.close({"format": FORMAT, "rows": self.rows, "tokens": tokens})
        finally:
            self.close()


class _SegmentSource:
    """An existing segment's live postings, its term ids mapped to the merged ones."""

    def __init__(self, seg: Segment, deleted: np.ndarray | None, mapping: np.ndarray,
                 offset: int):
        self.seg, self.mapping = seg, mapping
        keep = np.ones(seg.n_rows, bool) if deleted is None else ~deleted
        self.row_map = np.where(keep, np.cumsum(keep) - 1 + offset, -1).astype(np.int64)
        self.indptr = np.asarray(seg.indptr)

    def cut(self, bounds: list[int]) -> np.ndarray:
        return self.indptr[np.searchsorted(self.mapping, bounds)]

    def read(self, lo: int, hi: int):
        local = np.searchsorted(self.indptr, np.arange(lo, hi), side="right") - 1
        rows = self.row_map[np.asarray(self.seg.rows[lo:hi])]
        keep = rows >= 0
        return self.mapping[local][keep], rows[keep], np.asarray(self.seg.tf[lo:hi])[keep]


def merge(segments: list[Segment], deleted: list[np.ndarray | None], folder: Path | None,
          budget: int = BUILD_BUDGET) -> Segment | None:
    """One segment holding the live chunks of ``segments`` (in their order), written into
    ``folder`` (None: in memory, returned)."""
    term_lists = [s.terms_seq.all() for s in segments]
    terms = sorted(set().union(*term_lists))
    index = {t: i for i, t in enumerate(terms)}
    sink = Sink(folder)
    _save_terms(sink, terms)
    sources, per_term, offset = [], np.zeros(len(terms), dtype=np.int64), 0
    for seg, dele, seg_terms in zip(segments, deleted, term_lists, strict=True):
        mapping = np.fromiter((index[t] for t in seg_terms), np.int64, len(seg_terms))
        per_term += np.bincount(mapping, weights=np.diff(np.asarray(seg.indptr)),
                                minlength=len(terms)).astype(np.int64)
        sources.append(_SegmentSource(seg, dele, mapping, offset))
        offset += seg.n_rows - (0 if dele is None else int(dele.sum()))
    del index, term_lists
    write_postings(sink, sources, per_term, budget)
    tokens = 0
    for name in ("lengths", *COLUMNS):
        parts = [np.asarray(s.arrays[name]) if d is None else np.asarray(s.arrays[name])[~d]
                 for s, d in zip(segments, deleted, strict=True)]
        values = np.concatenate(parts)
        tokens += int(values.sum(dtype=np.int64)) if name == "lengths" else 0
        sink.save(name, values)
    return sink.close({"format": FORMAT, "rows": offset, "tokens": tokens})


class _Spilled:
    """One spilled array: its .npy file, dtype, where its values start, its length."""

    def __init__(self, path: Path, dtype: np.dtype, offset: int, length: int):
        self.path, self.dtype, self.offset, self.length = path, dtype, offset, length

    @classmethod
    def write(cls, path: Path, array: np.ndarray) -> _Spilled:
        np.save(path, array, allow_pickle=False)
        with open(path, "rb") as fh:
            np.lib.format.read_magic(fh)
            np.lib.format.read_array_header_1_0(fh)
            offset = fh.tell()
        return cls(path, array.dtype, offset, len(array))


def _read(value, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Values lo:hi of a spilled array (plain reads: only the range is resident)."""
    if not isinstance(value, _Spilled):
        return value[lo:hi]
    hi = value.length if hi is None else int(hi)
    return np.fromfile(value.path, value.dtype, hi - int(lo),
                       offset=value.offset + int(lo) * value.dtype.itemsize)


# --- the folder: manifest, deletion files, merges, garbage --------------------------------
def new_name(prefix: str = "seg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def write_manifest(folder: Path, info: dict) -> None:
    """Replace the manifest atomically (write a temporary file, then rename it)."""
    write_atomic(folder / MANIFEST, json.dumps({**info, "format": FORMAT}).encode())


def write_deletions(folder: Path, segment: str, mask: np.ndarray) -> str:
    """A new deletion file for ``segment`` (never an existing one rewritten: a reader
    may be holding it); returns its name."""
    name = f"{segment}.del-{uuid.uuid4().hex[:8]}.npy"
    np.save(folder / name, np.asarray(mask, dtype=bool), allow_pickle=False)
    return name


def collect_garbage(folder: Path, info: dict) -> None:
    """Remove the segment folders and deletion files that the manifest ``info`` does not
    list (left by a merge, a killed build, a replaced deletion file). Readers on other
    processes that still map them keep reading: on Linux an unlinked file stays readable
    while it is mapped. Call it holding the cache's write lock."""
    keep = {MANIFEST, "facets.json"}
    for entry in info.get("segments", []):
        keep.add(entry["name"])
        if entry.get("deleted"):
            keep.add(entry["deleted"])
    for path in folder.iterdir():
        if path.name in keep or path.name.endswith(".lock"):
            continue
        if path.name.startswith(("seg-", f"{MANIFEST}.", "lexical-build-")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


# Tiered merging: segments are grouped in tiers of size (live rows) by powers of
# MERGE_FACTOR; when a tier holds MERGE_FACTOR segments or more, they are merged into one.
MERGE_FACTOR = 8
MIN_TIER_ROWS = 1000  # every segment smaller than this is in the lowest tier


def plan_merge(sizes: list[int], factor: int = MERGE_FACTOR) -> list[int]:
    """Positions of a run of adjacent segments to merge (empty: nothing to merge).

    Adjacent, so the merged segment keeps the global row order (and the scores' ties);
    tiers by size: ``tier = floor(log_factor(max(rows, MIN_TIER_ROWS) / MIN_TIER_ROWS))``.
    The first run of ``factor`` adjacent segments of one tier is merged.

    >>> plan_merge([50_000, 900, 800, 700], factor=3)
    [1, 2, 3]
    >>> plan_merge([50_000, 900, 800], factor=3)
    []
    """
    tiers = [int(np.floor(np.log(max(s, MIN_TIER_ROWS) / MIN_TIER_ROWS) / np.log(factor)))
             for s in sizes]
    for start in range(len(sizes)):
        run = [start]
        for j in range(start + 1, len(sizes)):
            if tiers[j] != tiers[start]:
                break
            run.append(j)
            if len(run) >= factor:
                return run
    return []
