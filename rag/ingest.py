"""Ingest: files -> papers (deduplicated) -> chunks -> vectors -> the index.

Idempotent and resumable by construction:

1. Every record gets its paper id (:mod:`rag.identity`); a title already indexed
   under another id keeps that id, so one paper never lives under two ids.
2. Records with the same id are merged: every listing (date, source) is kept.
3. Each paper is compared with its stored record by a hash of title + abstract:
   same hash -> only new listings are merged into its metadata ("unchanged" when
   there are none); another hash or no record -> its chunks are (re)embedded.
4. Chunks are written under deterministic ids ``<paper_id>#<n>`` (old chunks of
   that paper deleted first), and chunk #0, which carries the paper record, last.
   A run killed anywhere leaves papers without a current record, and the next
   run redoes exactly those: same index as an uninterrupted run, no duplicates.

Embedding and Chroma writes overlap: while batch i is written, batch i+1 is
chunked and embedded (in a thread for small ingests, in worker processes for
large ones).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import NamedTuple

import numpy as np

from rag.chunk import make_chunker
from rag.embed import Embedder
from rag.errors import AbstractaError, Interrupted, SourceError
from rag.identity import abstract_key, normalize_title, paper_id, title_key
from rag.lock import writing
from rag.settings import Settings
from rag.sources import RecordStream, expand_paths, open_path
from rag.store import ChunkRecord, Store, chunk_metadata, metadata_for_paper
from rag.types import Chunk, Paper, StoredPaper

BUNDLED_CORPUS = Path(__file__).parent / "data" / "corpus"
PAPERS_PER_BATCH = 64  # papers embedded per step (and progress granularity)
WRITE_CHUNKS = 4000  # the writer merges queued steps into Chroma calls of up to this many chunks
WORKER_MIN_PAPERS = 2000  # from this many papers on, chunk and embed in a worker process
WORKER_PAPERS = 512  # papers per worker job (~2,000 chunks: one efficient Chroma write)
WORKER_AHEAD = 4  # jobs queued in the workers while the parent writes
WORKERS = max(1, min(2, (os.cpu_count() or 1)))  # chunk+embed processes
WRITE_QUEUE = 64  # embedded steps that may wait for the writer (~16 MB of vectors at most)
# Records read, deduplicated against the index and written per step of a streamed ingest:
# memory holds one batch (~10 MB of records at arXiv abstract lengths), whatever the file.
MERGE_RECORDS = 10_000

Progress = Callable[[int, int], None]  # (papers done, papers to embed)


@dataclass
class IngestReport:
    files: int = 0
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    chunks: int = 0
    skipped: list[str] = field(default_factory=list)  # "file:line: reason"
    failed_files: list[str] = field(default_factory=list)  # one-line errors for whole files
    merges: list[str] = field(default_factory=list)  # "file:line into file:line: title"
    capped: list[str] = field(default_factory=list)  # "title (N chunks)", cut to the cap
    max_chunks: int = 0  # the cap (Settings.max_chunks_per_paper) when papers were cut

    def summary(self) -> str:
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged",
                 f"{len(self.skipped)} skipped"]
        text = (f"{', '.join(parts)} ({self.records} records from {self.files} file"
                f"{'s' if self.files != 1 else ''}; {self.chunks} chunks written)")
        if self.failed_files:
            text += f"; {len(self.failed_files)} file(s) not ingested"
        if self.merges:
            text += (f"; {len(self.merges)} record{'s' if len(self.merges) != 1 else ''} merged "
                     f"as the same paper as an earlier record: {_some(self.merges)}")
        if self.capped:
            text += (f"; {len(self.capped)} paper{'s' if len(self.capped) != 1 else ''} cut to "
                     f"the first {self.max_chunks} chunks: {_some(self.capped)}")
        return text


def _some(items: list[str], n: int = 3) -> str:
    """The first ``n`` items, display-safe, and how many more there are."""
    from rag.text import display_safe

    shown = "; ".join(display_safe(i, newlines=False) for i in items[:n])
    return shown + (f"; and {len(items) - n} more" if len(items) > n else "")


# --- merging and identity -------------------------------------------------------------

def content_hash(title: str, abstract: str) -> str:
    return hashlib.sha1(f"{title}\n{abstract}".encode()).hexdigest()


def own_id(p: Paper) -> str | None:
    """The record's own id (arXiv id or the file's), None for a record known by title only."""
    pid = paper_id(p.title, p.arxiv_id, p.record_id)
    return None if pid.startswith("t:") else pid


class _Prior(NamedTuple):
    """A paper an earlier batch of this run wrote or checked (see :class:`_Seen`)."""

    added: bool  # the run added it (it was not in the index before the run)
    where: str  # "file:line" of its first record in this run ("" when unknown)
    abstract_keys: frozenset[str]  # abstracts of its records other than the stored one


PriorOf = Callable[[str], "_Prior | None"]


@dataclass
class _Group:
    """The records that are one paper, while merging."""

    pid: str
    title_key: str
    abstract_keys: set[str]
    sources: set[str]
    known: bool = False  # in the index before this run
    first_where: str | None = None  # "file:line" of the first record of this run
    records: int = 0  # records of this batch merged into it
    last_abstract_key: str = ""  # of its latest record: the merged paper's abstract


class _Groups:
    """Papers by id and by title key, for one batch: the index's papers of the batch's
    titles, then the batch's own records, in the order :func:`_merge` gives them."""

    def __init__(self) -> None:
        self.by_id: dict[str, _Group] = {}
        self.by_title: dict[str, list[_Group]] = {}

    def add(self, pid: str, key: str, akeys: set[str], sources, known: bool = False,
            first_where: str | None = None) -> _Group:
        group = _Group(pid, key, set(akeys), set(sources), known, first_where)
        self.by_id[pid] = group
        self.by_title.setdefault(key, []).append(group)
        return group

    def assign(self, p: Paper, prior: PriorOf) -> _Group:
        """The paper this record belongs to (a new one when none matches)."""
        key, akey = title_key(p.title), abstract_key(p.abstract)
        sources = {lst.source for lst in p.listings if lst.source}
        same_title = self.by_title.get(key, [])
        match = next((g for g in same_title if akey in g.abstract_keys), None)
        own = own_id(p)
        if own is not None:
            group = self.by_id.get(own)
            if group is None and match is not None and match.known and match.pid.startswith("t:"):
                group = match  # indexed by its title before: it keeps that id
            if group is None:
                before = prior(own)
                group = self.add(own, key, {akey}, sources,
                                 first_where=before.where if before else None)
        elif match is not None:
            group = match
        else:
            edited = next((g for g in same_title if g.known and g.sources & sources), None)
            if edited is not None:
                group = edited  # the same file brings a new abstract for the paper
            else:
                plain = f"t:{key}"
                pid = plain if plain not in self.by_id else f"{plain}-{akey[:8]}"
                group = self.add(pid, key, {akey}, sources)
        group.abstract_keys.add(akey)
        group.last_abstract_key = akey  # records are assigned in _combine's order
        group.sources |= sources
        return group


def _merge(papers: list[Paper], known: dict[str, list[StoredPaper]],
           report: IngestReport | None = None, prior: PriorOf | None = None,
           ) -> dict[str, StoredPaper]:
    """Group records into one StoredPaper per paper id; later abstracts replace earlier ones.

    Records are one paper when they share an arXiv id or a file's own id (``csv:17``),
    or when they share a title *and* an abstract (normalized: whitespace, case, TeX),
    so a listing page and an arXiv snapshot of one paper meet. A record without an id
    whose title is taken by another paper with a different abstract is another paper
    ("Summary", "Erratum"): it gets ``t:<title key>-<abstract key>``. The exception is
    an edit: a record from the same file as an indexed paper of that title replaces its
    abstract. ``known``: title key -> the indexed papers with that title. ``prior``:
    what earlier batches of this run did with a paper id. Every record merged into
    another is listed in ``report.merges``.
    """
    return _merge_groups(papers, known, report, prior)[0]


def _merge_groups(papers: list[Paper], known: dict[str, list[StoredPaper]],
                  report: IngestReport | None, prior: PriorOf | None,
                  ) -> tuple[dict[str, StoredPaper], dict[str, _Group]]:
    """:func:`_merge`, and the groups (records, abstract keys, first record) by id."""
    prior_of: PriorOf = prior or (lambda pid: None)
    groups = _Groups()
    for key, stored in known.items():
        for sp in stored:
            before = prior_of(sp.paper_id)
            groups.add(sp.paper_id, key, {abstract_key(sp.abstract)} | set(
                before.abstract_keys if before else ()), sp.sources,
                known=not (before and before.added),
                first_where=before.where if before else None)
    # Records with an id first: a title-only record then joins the paper it matches.
    assigned = [(p, groups.assign(p, prior_of))
                for p in sorted(papers, key=lambda p: own_id(p) is None)]
    return _combine(assigned, report), groups.by_id


def _combine(assigned: list[tuple[Paper, _Group]],
             report: IngestReport | None) -> dict[str, StoredPaper]:
    """One StoredPaper per group: listings pooled, the last abstract, the first title."""
    merged: dict[str, StoredPaper] = {}
    for p, group in assigned:
        pid = group.pid
        group.records += 1
        dates = tuple(lst.date for lst in p.listings if lst.date)
        sources = tuple(lst.source for lst in p.listings if lst.source)
        old = merged.get(pid)
        if old is None:
            merged[pid] = StoredPaper(pid, p.title, p.abstract, tuple(sorted(set(dates))),
                                      tuple(sorted(set(sources))), p.authors, p.url)
        else:
            merged[pid] = StoredPaper(
                pid, old.title, p.abstract,
                tuple(sorted(set(old.dates) | set(dates))),
                tuple(sorted(set(old.sources) | set(sources))),
                p.authors or old.authors, p.url or old.url,
            )
        if group.first_where is None:  # the first record of this paper in this run
            group.first_where = p.where
        elif report is not None:
            report.merges.append(f"{p.where or p.title} into {group.first_where or pid}: "
                                 f"{p.title}")
    return merged


class _Seen:
    """The papers this run has written or checked, for the batches that follow: whether
    the run added, updated or left each one unchanged, and where its first record was.

    Kept in numpy arrays of 15 bytes a paper (a 64-bit hash of the id, the outcome, the
    file's number and the line), not in a dict of ids: 2.7M papers (the whole arXiv)
    take 40 MB instead of ~500 MB. A hash collision (odds ~1e-7 at 2.7M) would at most
    miscount one paper as updated or misname the record a merge went into. Papers whose
    records brought several abstracts keep the others' keys (``extra``): a later record
    with any of them still matches; such papers are few (as few as the merges reported).
    """

    ADDED, UPDATED, UNCHANGED = 0, 1, 2

    def __init__(self) -> None:
        self.keys = np.empty(0, np.int64)
        self.outcome = np.empty(0, np.uint8)
        self.source = np.empty(0, np.uint16)
        self.line = np.empty(0, np.uint32)
        self.names: list[str] = []  # file names by number (a run reads few files)
        self.numbers: dict[str, int] = {}
        self.extra: dict[str, frozenset[str]] = {}
        self.batch: dict[str, tuple[int, str]] = {}  # this batch, until commit()

    @staticmethod
    def key(pid: str) -> int:
        return int.from_bytes(hashlib.blake2b(pid.encode(), digest_size=8).digest(), "little",
                              signed=True)

    def _find(self, pid: str) -> int | None:
        k = self.key(pid)
        i = int(np.searchsorted(self.keys, k))
        return i if i < len(self.keys) and self.keys[i] == k else None

    def get(self, pid: str) -> _Prior | None:
        """What an earlier batch did with this paper (None: not seen in this run)."""
        i = self._find(pid)
        if i is None:
            return None
        where = "" if self.source[i] == 0xFFFF else f"{self.names[self.source[i]]}:{self.line[i]}"
        return _Prior(bool(self.outcome[i] == self.ADDED), where,
                      self.extra.get(pid, frozenset()))

    def outcome_of(self, pid: str) -> int | None:
        i = self._find(pid)
        return None if i is None else int(self.outcome[i])

    def put(self, pid: str, outcome: int, where: str, extra: set[str]) -> None:
        self.batch[pid] = (outcome, where)
        if extra:
            self.extra[pid] = frozenset(extra)
        else:
            self.extra.pop(pid, None)

    def _where(self, where: str) -> tuple[int, int]:
        name, _, line = where.rpartition(":")
        if not name or not line.isdigit() or int(line) >= 2**32:
            return 0xFFFF, 0
        if name not in self.numbers:
            if len(self.names) >= 0xFFFF:
                return 0xFFFF, 0
            self.numbers[name] = len(self.names)
            self.names.append(name)
        return self.numbers[name], int(line)

    def commit(self) -> None:
        """Fold this batch into the arrays (a paper seen before keeps its first record)."""
        new_keys, new_out, new_src, new_line = [], [], [], []
        for pid, (outcome, where) in self.batch.items():
            i = self._find(pid)
            if i is not None:
                self.outcome[i] = outcome
                continue
            source, line = self._where(where)
            new_keys.append(self.key(pid))
            new_out.append(outcome)
            new_src.append(source)
            new_line.append(line)
        self.batch = {}
        if not new_keys:
            return
        keys = np.concatenate([self.keys, np.array(new_keys, np.int64)])
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.outcome = np.concatenate([self.outcome, np.array(new_out, np.uint8)])[order]
        self.source = np.concatenate([self.source, np.array(new_src, np.uint16)])[order]
        self.line = np.concatenate([self.line, np.array(new_line, np.uint32)])[order]


# --- chunking ---------------------------------------------------------------------------

def _note_capped(papers: list[StoredPaper], settings: Settings, report: IngestReport) -> None:
    """List in the report the papers whose abstracts hold more chunks than the cap."""
    cap = settings.max_chunks_per_paper
    long = [p for p in papers if len(p.abstract) > cap * (settings.chunk_size -
                                                          settings.chunk_overlap)]
    if not long:
        return
    cut = make_chunker(settings).cut  # type: ignore[attr-defined]
    report.capped += [f"{p.title} ({len(p.abstract):,} characters)" for p in long if cut(p)]
    report.max_chunks = cap



# --- the ingest run ---------------------------------------------------------------------

def open_files(paths: list[Path], report: IngestReport) -> list[RecordStream]:
    """The readable files, checked and their records counted (none held); files that
    cannot be read are noted in the report."""
    streams: list[RecordStream] = []
    for path in expand_paths(paths):
        report.files += 1
        try:
            streams.append(open_path(path))
        except SourceError as exc:
            report.failed_files.append(str(exc))
        except Exception as exc:  # a loader bug must not stop the other files
            report.failed_files.append(_loader_bug(path, exc))
    return streams


def _loader_bug(path: Path, exc: Exception) -> str:
    return f"{path}: could not be read ({type(exc).__name__}); please report this file."


def _records(streams: list[RecordStream], report: IngestReport | None) -> Iterator[Paper]:
    """Every usable record of the files, read as needed. With ``report`` (the first
    pass) each file's records and skipped lines are counted, and a file that turns out
    to hold no usable record (or breaks its loader) is noted and dropped from ``streams``
    so a second pass does not read it again."""
    for stream in list(streams):
        try:
            yield from stream
        except Exception as exc:  # SourceError: the file changed since its check
            failed = str(exc) if isinstance(exc, SourceError) else _loader_bug(stream.path, exc)
        else:
            failed = str(stream.no_papers()) if not stream.papers else ""
        if report is None:
            continue
        if failed:
            report.failed_files.append(failed)
            streams.remove(stream)
        else:
            report.records += stream.papers
            report.skipped.extend(stream.skipped)


def _file_batches(streams: list[RecordStream], report: IngestReport) -> Iterator[list[Paper]]:
    """The files' records in batches of up to MERGE_RECORDS, in :func:`_merge`'s order:
    records with an id of their own first, then records known only by their title (so a
    listing and an arXiv record of one paper meet under the arXiv id, as in one batch).
    Files of at most MERGE_RECORDS records are one batch, read once; larger inputs are
    read twice (the second pass only when the first met title-only records)."""
    if sum(s.records for s in streams) <= MERGE_RECORDS:
        papers = list(_records(streams, report))
        if papers:
            yield papers
        return
    title_only = 0

    def with_ids(papers: Iterator[Paper]) -> Iterator[Paper]:
        nonlocal title_only
        for p in papers:
            if own_id(p) is None:
                title_only += 1
            else:
                yield p

    yield from _chunked(with_ids(_records(streams, report)))
    if title_only:
        yield from _chunked(p for p in _records(streams, None) if own_id(p) is None)


def _chunked(papers: Iterator[Paper]) -> Iterator[list[Paper]]:
    batch: list[Paper] = []
    for p in papers:
        batch.append(p)
        if len(batch) >= MERGE_RECORDS:
            yield batch
            batch = []
    if batch:
        yield batch


def _list_batches(papers: list[Paper]) -> Iterator[list[Paper]]:
    """Records already in memory (:func:`ingest_papers`), in :func:`_file_batches`' order."""
    if len(papers) > MERGE_RECORDS:
        papers = sorted(papers, key=lambda p: own_id(p) is None)
    for start in range(0, len(papers), MERGE_RECORDS):
        yield papers[start:start + MERGE_RECORDS]


# --- one writer at a time, and a clean stop ----------------------------------------------

OnWait = Callable[[str], None]  # told once when this writer waits for another (and why)


@dataclass
class _Run:
    """How far an ingest got: papers committed (chunk #0 written) of papers to write."""

    done: int = 0
    total: int = 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (exit code 143 instead of 130)."""

    exit_code = 143


@contextmanager
def _writer(store: Store, settings: Settings, wait: bool, on_lock_wait: OnWait | None,
            command: str | None) -> Iterator[None]:
    """Hold the index's write lock (rag/lock.py) for one ingest; re-entrant per store."""
    if store.writing:
        yield
        return
    with writing(settings, wait=wait, on_wait=on_lock_wait, command=command):
        store.begin_write()
        try:
            yield
        finally:
            store.end_write()


@contextmanager
def _stoppable(run: _Run) -> Iterator[_Run]:
    """Turn Ctrl-C and SIGTERM into :class:`Interrupted` with how far the run got.

    Papers are committed one by one (chunk #0 last), so whatever was written stays and
    the same command finishes the rest.
    """
    old = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):
            raise _Terminated()

        old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield run
    except KeyboardInterrupt as exc:
        raise Interrupted(f"Stopped after {run.done} of {run.total} records; run the same "
                          "command again to finish.", getattr(exc, "exit_code", 130)) from None
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def ingest_paths(
    paths: list[Path], settings: Settings, store: Store, embedder: Embedder,
    progress: Progress | None = None, *, rebuild: bool = False, wait: bool = True,
    on_lock_wait: OnWait | None = None, command: str | None = None,
) -> IngestReport:
    """Add the papers in these files and folders to the index (``rebuild``: to an empty
    one). Holds the index's write lock; ``wait=False`` fails at once when another process
    holds it (:class:`rag.errors.IndexBusyError`), else ``on_lock_wait`` is told and it waits.

    The files are read as a stream (see :func:`_file_batches`): memory holds one batch
    of records, however large the files. ``progress`` counts records (a first pass
    counts them without keeping any)."""
    report = IngestReport()
    streams = open_files(paths, report)  # check (and refuse) files before touching the index
    if not streams and not rebuild:
        return report
    with _writer(store, settings, wait, on_lock_wait, command):
        if rebuild:
            store.reset()
        if streams:
            run = _Run(total=sum(s.records for s in streams))
            with _stoppable(run):
                _ingest(_file_batches(streams, report), settings, store, embedder, report,
                        progress, run)
    return report


def ingest_papers(
    papers: list[Paper], settings: Settings, store: Store, embedder: Embedder,
    report: IngestReport | None = None, progress: Progress | None = None, *,
    wait: bool = True, on_lock_wait: OnWait | None = None, command: str | None = None,
) -> IngestReport:
    report = report or IngestReport(records=len(papers))
    run = _Run(total=len(papers))
    with _writer(store, settings, wait, on_lock_wait, command), _stoppable(run):
        _ingest(_list_batches(papers), settings, store, embedder, report, progress, run)
    return report


def _ingest(batches: Iterator[list[Paper]], settings: Settings, store: Store,
            embedder: Embedder, report: IngestReport, progress: Progress | None,
            run: _Run) -> None:
    """Each batch: merge its records with the index's papers of the same titles, update
    the listings of unchanged papers, then chunk, embed and write the rest, all before
    the next batch is merged (which then finds this one's papers in the index)."""
    seen = _Seen()
    writer = _Embedding(settings, store, embedder, progress, run)
    try:
        for n, papers in enumerate(batches):
            if n == 0:
                store.check_model(embedder.name, embedder.dim)
            items = _dedupe(papers, store, report, seen, run)
            if progress:
                progress(run.done, run.total)
            _note_capped([item.paper for item in items], settings, report)
            if items:
                writer.write(items)
            seen.commit()
    except BaseException:
        writer.abort()
        raise
    report.chunks = writer.finish()
    if progress and run.total:
        progress(run.total, run.total)  # skipped lines were counted in the total


class _Item(NamedTuple):
    """A paper to chunk, embed and write."""

    paper: StoredPaper
    digest: str  # content_hash of its title and abstract
    records: int  # the records it stands for (progress counts records)
    rewrite: bool  # an earlier batch of this run wrote it: its chunks must be replaced


def _dedupe(papers: list[Paper], store: Store, report: IngestReport, seen: _Seen,
            run: _Run) -> list[_Item]:
    """Merge one batch against the index; update the listings of unchanged papers (their
    records counted done); return the papers to embed."""
    keys = sorted({title_key(p.title) for p in papers})
    known_ids = store.ids_by_title_key(keys)
    stored = store.get_papers(sorted({pid for ids in known_ids.values() for pid in ids}))
    merged, groups = _merge_groups(
        papers, {key: [stored[pid] for pid in ids if pid in stored]
                 for key, ids in known_ids.items()}, report, seen.get)
    existing = store.paper_records(list(merged))
    items, meta_ids, meta_updates = [], [], []
    for pid, paper in merged.items():
        old = existing.get(pid)
        paper = _with_stored(paper, old)
        digest = content_hash(paper.title, paper.abstract)
        group, before = groups[pid], seen.outcome_of(pid)
        if old is None or old.paper is None or old.content_hash != digest:
            outcome = _Seen.ADDED if old is None else _Seen.UPDATED
            items.append(_Item(paper, digest, group.records, before is not None))
        else:
            new_meta = metadata_for_paper(paper, digest, title_key(paper.title))
            outcome = _Seen.UNCHANGED
            stored_meta = old.paper_metadata()
            if any(new_meta[k] != stored_meta[k] for k in ("dates", "sources", "authors", "url")):
                meta_ids.append(pid)
                meta_updates.append(new_meta)
                outcome = _Seen.UPDATED
            run.done += group.records
        outcome = _count(report, before, outcome)
        seen.put(pid, outcome, group.first_where or "",
                 group.abstract_keys - {group.last_abstract_key})
    if meta_ids:
        store.update_paper_meta(meta_ids, meta_updates)
    return items


def _with_stored(paper: StoredPaper, old: ChunkRecord | None) -> StoredPaper:
    """The merged paper with what the index holds for it: its title, every listing."""
    if old is None or old.paper is None:
        return paper
    was = old.paper
    return StoredPaper(
        paper.paper_id, was.title or paper.title, paper.abstract,
        tuple(sorted(set(paper.dates) | set(was.dates))),
        tuple(sorted(set(paper.sources) | set(was.sources))),
        paper.authors or was.authors, paper.url or was.url,
    )


def _count(report: IngestReport, before: int | None, outcome: int) -> int:
    """Count a paper once per run: a paper an earlier batch added stays added, one it
    updated stays updated; one it left unchanged is updated now if this batch changed it."""
    names = {_Seen.ADDED: "added", _Seen.UPDATED: "updated", _Seen.UNCHANGED: "unchanged"}
    if before is not None:
        setattr(report, names[before], getattr(report, names[before]) - 1)
        if before != _Seen.UNCHANGED:
            outcome = before
    setattr(report, names[outcome], getattr(report, names[outcome]) + 1)
    return outcome


class _Embedding:
    """Chunk, embed and write the papers of a run, batch after batch.

    Started on the first paper to embed (a run with none leaves the index's generation
    alone); worker processes, once started, serve the rest of the run. ``finish`` saves
    the vector index whole and builds the BM25 cache.
    """

    def __init__(self, settings: Settings, store: Store, embedder: Embedder,
                 progress: Progress | None, run: _Run) -> None:
        self.settings, self.store, self.embedder = settings, store, embedder
        self.progress, self.run = progress, run
        self.started, self.fresh, self.written = False, False, 0
        self.pool = None
        self.chunker: Callable[[StoredPaper], list[Chunk]] | None = None

    def write(self, items: list[_Item]) -> None:
        if not self.started:
            self._start()
        if self.pool is None and len(items) >= WORKER_MIN_PAPERS and _rebuildable(
                self.embedder, self.settings):
            self.pool = _start_pool(self.settings)
        if self.pool is not None:
            self.written += _embed_in_worker(items, self.pool, self.store, self.fresh,
                                             self.progress, self.run)
            return
        if self.chunker is None:
            self.chunker = make_chunker(self.settings)
        self.written += _embed_in_thread(items, self.chunker, self.store, self.embedder,
                                         self.fresh, self.progress, self.run)

    def _start(self) -> None:
        self.started = True
        self.store.check_model(self.embedder.name, self.embedder.dim, claim=True)
        # A collection that starts empty has no old chunks to delete: skipping the delete
        # saves ~15% of write time on a first ingest. (A resumed run starts non-empty.)
        self.fresh = self.store.count_chunks() == 0
        # Mark the chunk set dirty before the first write: a run killed half-way must not
        # leave a lexical cache that believes it is current.
        self.store.bump_generation()

    def abort(self) -> None:
        if self.pool is not None:
            _stop_pool(self.pool)
            self.pool = None

    def finish(self) -> int:
        """Chunks written. Saves the vector index and builds the BM25 cache."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
        if not self.started:
            return 0
        self.store.flush()  # every process then loads the same vector index (Store.flush)
        self.store.bump_generation(indexed=True)
        # Build the BM25 cache now rather than in the first question after the ingest
        # (at 100k chunks that took 40 s of a user's first `ask`).
        self.store.lexical()
        return self.written


def _rebuildable(embedder: Embedder, settings: Settings) -> bool:
    """Whether a worker process can build the same embedder from the settings alone."""
    from rag.embed import MiniLMOnnx, WordLlamaEmbedder

    kind = {MiniLMOnnx: "minilm", WordLlamaEmbedder: "wordllama"}.get(type(embedder))
    return kind == settings.embedder


# The worker process: chunking and embedding, while the parent only writes to Chroma.
# Chroma's Rust bindings hold the GIL while they write, so a writer *thread* cannot
# overlap with chunking and embedding (measured at 10k papers: 106 s wall for 108 s of
# CPU, i.e. serial); a second process can.
_WORKER: dict = {}


def _worker_init(settings: Settings, parent: int, threads: int) -> None:
    from rag.embed import build_embedder

    _die_with_parent(parent)
    # Ctrl-C reaches the whole terminal process group: the parent stops the run and
    # these workers with it, so they must not print tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["chunker"] = make_chunker(settings)
    # Each worker's share of the cores: WORKERS embedders that each spin a thread per
    # core would fight over them (MiniLM's onnxruntime; wordllama is numpy).
    _WORKER["embedder"] = build_embedder(settings, threads=threads)


def _worker_threads() -> int:
    """Inference threads per worker process: 2 cores, 2 workers -> 1 each."""
    return max(1, (os.cpu_count() or 1) // WORKERS)


def _worker_job(batch: list[_Item]):
    chunks = [c for item in batch for c in _WORKER["chunker"](item.paper)]
    return batch, chunks, _WORKER["embedder"].embed_documents([c.text for c in chunks])


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker when its parent dies, however it dies (SIGKILL,
    OOM killer): an orphaned worker would otherwise sleep forever holding ~200 MB."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's clean stop still ends us
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _start_pool(settings: Settings):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # "spawn": the parent runs Chroma and onnxruntime threads, which fork would copy
    # in an undefined state.
    return ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init,
                               initargs=(settings, os.getpid(), _worker_threads()))


def _stop_pool(pool) -> None:
    """Stop the workers now: a stopped run must not wait for jobs nobody will write, nor
    forever for a worker that died."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    queue = getattr(pool, "_result_queue", None)  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
    for proc in procs:
        proc.join(timeout=5)
    # A worker killed while it was sending its result leaves half a message in the result
    # pipe: the pool's manager thread then waits forever for the rest, and the interpreter's
    # exit waits for that thread (a stopped ingest that never exits). With every worker
    # gone, closing our own copy of the pipe's write end turns that wait into end-of-file,
    # which the manager thread treats as a broken pool and ends.
    if queue is not None and not any(proc.is_alive() for proc in procs):
        queue._writer.close()


def _embed_in_worker(items: list[_Item], pool, store: Store, fresh: bool,
                     progress: Progress | None, run: _Run) -> int:
    """Chunk and embed in the worker processes, WORKER_AHEAD jobs ahead of the writes."""
    from concurrent.futures.process import BrokenProcessPool

    batches = [items[i:i + WORKER_PAPERS] for i in range(0, len(items), WORKER_PAPERS)]
    written = 0
    pending = [pool.submit(_worker_job, b) for b in batches[:WORKER_AHEAD]]
    next_batch = len(pending)
    while pending:
        try:
            batch, chunks, vectors = pending.pop(0).result()
        except BrokenProcessPool as exc:
            raise AbstractaError(
                f"A chunk-and-embed worker process died (out of memory?) after {run.done} "
                f"of {run.total} papers; run the same command again to finish.") from exc
        if next_batch < len(batches):
            pending.append(pool.submit(_worker_job, batches[next_batch]))
            next_batch += 1
        _write_batch(store, batch, chunks, vectors, fresh)
        written += len(chunks)
        run.done += sum(item.records for item in batch)
        if progress:
            progress(run.done, run.total)
    return written


class _Writes:
    """The writer thread of :func:`_embed_in_thread`: embedded steps in, Chroma writes out.

    Chroma's Rust bindings hold the GIL while they write, so this overlaps little with
    embedding; it keeps the writes in big calls and the main thread free to stop.
    """

    def __init__(self, store: Store, fresh: bool, run: _Run) -> None:
        self.store, self.fresh, self.run = store, fresh, run
        self.queue: Queue = Queue(maxsize=WRITE_QUEUE)
        self.failure: list[BaseException] = []
        self.stop = threading.Event()  # Ctrl-C: write nothing more
        self.thread = threading.Thread(target=self._loop, name="abstracta-writer", daemon=True)
        self.thread.start()

    def _take(self) -> list:
        """The next step, and whatever else is waiting, up to WRITE_CHUNKS: Chroma writes
        cost far less per row in big calls (measured at 10k papers: 272 chunks/s with
        260-chunk calls, 716 chunks/s with 4,000-chunk calls)."""
        jobs = [self.queue.get()]
        while jobs[-1] is not None and sum(len(j[1]) for j in jobs) < WRITE_CHUNKS:
            try:
                jobs.append(self.queue.get_nowait())
            except Empty:
                break
        return jobs

    def _loop(self) -> None:
        done = False
        while not done:
            jobs = self._take()
            if jobs[-1] is None:
                done = True
                jobs.pop()
            if self.failure or self.stop.is_set() or not jobs:
                continue
            try:
                _write_batch(self.store, [p for j in jobs for p in j[0]],
                             [c for j in jobs for c in j[1]],
                             np.concatenate([j[2] for j in jobs]), self.fresh)
                self.run.done += sum(item.records for j in jobs for item in j[0])
            except BaseException as exc:  # handed to the main thread
                self.failure.append(exc)

    def close(self) -> None:
        """Let the writer finish (or, after a stop, drop what waits) and join it."""
        while True:  # the end marker must get in even when the queue is full
            try:
                self.queue.put(None, timeout=0.1)
                break
            except Exception:  # queue.Full
                if self.stop.is_set():
                    _drain(self.queue)
        self.thread.join()

    def check(self) -> None:
        """Raise what stopped the writer, if anything did."""
        if self.failure:
            exc = self.failure[0]
            if isinstance(exc, AbstractaError):
                raise exc
            raise AbstractaError(f"Ingest stopped: {exc}") from exc


def _embed_in_thread(items: list[_Item], chunker, store: Store, embedder: Embedder,
                     fresh: bool, progress: Progress | None, run: _Run) -> int:
    """Chunk and embed here, PAPERS_PER_BATCH papers a step, while a thread writes."""
    writes = _Writes(store, fresh, run)
    written, embedded = 0, run.done
    try:
        for start in range(0, len(items), PAPERS_PER_BATCH):
            if writes.failure:
                break
            batch = items[start:start + PAPERS_PER_BATCH]
            chunks = [c for item in batch for c in chunker(item.paper)]
            vectors = embedder.embed_documents([c.text for c in chunks])
            writes.queue.put((batch, chunks, vectors))
            written += len(chunks)
            embedded += sum(item.records for item in batch)
            if progress:
                progress(embedded, run.total)
    except BaseException:
        writes.stop.set()  # the writer finishes the call it is in and writes nothing more
        raise
    finally:
        writes.close()
    writes.check()
    return written


def _drain(queue: Queue) -> None:
    try:
        while True:
            queue.get_nowait()
    except Empty:
        pass


def _write_batch(store: Store, batch: list[_Item], chunks: list[Chunk], vectors: np.ndarray,
                 fresh: bool = False) -> None:
    ids = [item.paper.paper_id for item in batch]
    metas = {item.paper.paper_id: metadata_for_paper(item.paper, item.digest,
                                                     title_key(item.paper.title))
             for item in batch}
    store.replace_chunks(
        ids, [c.chunk_id for c in chunks], vectors,
        [chunk_metadata(c.paper_id, c.index, metas[c.paper_id], c.text) for c in chunks],
        # Fresh collection: nothing to delete, unless this run wrote the paper before.
        delete_old=not fresh or any(item.rewrite for item in batch),
    )


def needs_bundled_corpus(settings: Settings, store: Store) -> bool:
    """Is this a first use (an empty index, auto-ingest on) that the bundled corpus fills?"""
    return settings.auto_ingest_bundled and not store.has_papers()


def ensure_bundled_corpus(settings, store, embedder, progress=None, *, wait: bool = True,
                          on_lock_wait: OnWait | None = None) -> IngestReport | None:
    """Ingest the bundled sample corpus when the index is empty (first use)."""
    if not needs_bundled_corpus(settings, store):
        return None
    with _writer(store, settings, wait, on_lock_wait, None):
        if store.has_papers():  # another process did the first run while we waited
            return None
        return ingest_paths([BUNDLED_CORPUS], settings, store, embedder, progress)


__all__ = ["IngestReport", "ingest_paths", "ingest_papers", "ensure_bundled_corpus",
           "needs_bundled_corpus",
           "content_hash", "make_chunker", "normalize_title", "BUNDLED_CORPUS"]
