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
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue

import numpy as np

from rag.embed import Embedder, load_tokenizer
from rag.errors import AbstractaError, Interrupted, SourceError
from rag.identity import abstract_key, normalize_title, paper_id, title_key
from rag.lock import writing
from rag.settings import Settings
from rag.sources import expand_paths, load_path
from rag.store import Store, chunk_metadata, metadata_for_paper, split_list
from rag.types import Chunk, Paper, StoredPaper

BUNDLED_CORPUS = Path(__file__).parent / "data" / "corpus"
PAPERS_PER_BATCH = 64  # papers embedded per step (and progress granularity)
WRITE_CHUNKS = 4000  # the writer merges queued steps into Chroma calls of up to this many chunks
WORKER_MIN_PAPERS = 2000  # from this many papers on, chunk and embed in a worker process
WORKER_PAPERS = 512  # papers per worker job (~2,000 chunks: one efficient Chroma write)
WORKER_AHEAD = 4  # jobs queued in the workers while the parent writes
WORKERS = max(1, min(2, (os.cpu_count() or 1)))  # chunk+embed processes
WRITE_QUEUE = 64  # embedded steps that may wait for the writer (~16 MB of vectors at most)

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


@dataclass
class _Group:
    """The records that are one paper, while merging."""

    pid: str
    title_key: str
    abstract_keys: set[str]
    sources: set[str]
    known: bool = False  # already in the index
    wheres: list[str] = field(default_factory=list)  # "file:line" of each record merged in


def _merge(papers: list[Paper], known: dict[str, list[StoredPaper]],
           report: IngestReport | None = None) -> dict[str, StoredPaper]:
    """Group records into one StoredPaper per paper id; later abstracts replace earlier ones.

    Records are one paper when they share an arXiv id or a file's own id (``csv:17``),
    or when they share a title *and* an abstract (normalized: whitespace, case, TeX),
    so a listing page and an arXiv snapshot of one paper meet. A record without an id
    whose title is taken by another paper with a different abstract is another paper
    ("Summary", "Erratum"): it gets ``t:<title key>-<abstract key>``. The exception is
    an edit: a record from the same file as an indexed paper of that title replaces its
    abstract. ``known``: title key -> the indexed papers with that title. Every record
    merged into another is listed in ``report.merges``.
    """
    groups: dict[str, _Group] = {}
    by_title: dict[str, list[_Group]] = {}

    def add_group(pid, key, akey, sources, known_=False) -> _Group:
        group = _Group(pid, key, {akey}, set(sources), known_)
        groups[pid] = group
        by_title.setdefault(key, []).append(group)
        return group

    for key, stored in known.items():
        for sp in stored:
            add_group(sp.paper_id, key, abstract_key(sp.abstract), sp.sources, True)

    def own_id(p: Paper) -> str | None:
        pid = paper_id(p.title, p.arxiv_id, p.record_id)
        return None if pid.startswith("t:") else pid

    assigned: list[tuple[Paper, _Group]] = []
    # Records with an id first: a title-only record then joins the paper it matches.
    for p in sorted(papers, key=lambda p: own_id(p) is None):
        key, akey = title_key(p.title), abstract_key(p.abstract)
        sources = {lst.source for lst in p.listings if lst.source}
        same_title = by_title.get(key, [])
        match = next((g for g in same_title if akey in g.abstract_keys), None)
        own = own_id(p)
        if own is not None:
            group = groups.get(own)
            if group is None and match is not None and match.known and match.pid.startswith("t:"):
                group = match  # indexed by its title before: it keeps that id
            if group is None:
                group = add_group(own, key, akey, sources)
        elif match is not None:
            group = match
        else:
            edited = next((g for g in same_title if g.known and g.sources & sources), None)
            if edited is not None:
                group = edited  # the same file brings a new abstract for the paper
            else:
                plain = f"t:{key}"
                pid = plain if plain not in groups else f"{plain}-{akey[:8]}"
                group = add_group(pid, key, akey, sources)
        group.abstract_keys.add(akey)
        group.sources |= sources
        assigned.append((p, group))

    merged: dict[str, StoredPaper] = {}
    first_where: dict[str, str] = {}
    for p, group in assigned:
        pid = group.pid
        dates = tuple(lst.date for lst in p.listings if lst.date)
        sources = tuple(lst.source for lst in p.listings if lst.source)
        old = merged.get(pid)
        if old is None:
            merged[pid] = StoredPaper(pid, p.title, p.abstract, tuple(sorted(set(dates))),
                                      tuple(sorted(set(sources))), p.authors, p.url)
            first_where[pid] = p.where
        else:
            merged[pid] = StoredPaper(
                pid, old.title, p.abstract,
                tuple(sorted(set(old.dates) | set(dates))),
                tuple(sorted(set(old.sources) | set(sources))),
                p.authors or old.authors, p.url or old.url,
            )
            if report is not None:
                report.merges.append(f"{p.where or p.title} into {first_where[pid] or pid}: "
                                     f"{p.title}")
    return merged


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



def make_chunker(settings: Settings) -> Callable[[StoredPaper], list[Chunk]]:
    """Split abstracts with llama-index's SentenceSplitter, counting model tokens.

    Chunk overlap, worked example with chunk_tokens=110, overlap=24: a 318-token
    abstract becomes spans of at most 110 tokens cut at sentence ends, and each
    span starts with up to 24 tokens (whole sentences where possible) that end the
    previous one, so a fact straddling a cut is whole in at least one chunk. The
    title goes in front of every span: a chunk that never names its subject would
    embed poorly.

    At most ``max_chunks_per_paper`` chunks per paper, from the start of the abstract:
    one 2 MB "abstract" would otherwise be thousands of chunks and fill the dense top
    candidates of every related question. Only a prefix that can hold that many chunks
    is split (``cap * chunk_size * 10`` characters: a token is rarely 10 characters),
    so a huge abstract costs no more than a long one.
    """
    from llama_index.core.node_parser import SentenceSplitter

    tok = load_tokenizer(None)
    splitter = SentenceSplitter(
        chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
        # len() is all the splitter needs; the Encoding has it without building a list.
        tokenizer=lambda text: tok.encode(text, add_special_tokens=False),
        # Abstracts are single paragraphs of well-formed sentences: a regex split gives
        # the same chunks as the default NLTK punkt splitter at a third of the cost.
        chunking_tokenizer_fn=_sentences_for_splitter,
    )

    cap = settings.max_chunks_per_paper
    prefix = cap * settings.chunk_size * 10

    def chunk(paper: StoredPaper) -> list[Chunk]:
        spans = splitter.split_text(paper.abstract[:prefix]) or [paper.abstract[:prefix]]
        if len(paper.abstract) > prefix and len(spans) < cap:  # very long tokens: split all
            spans = splitter.split_text(paper.abstract)
        return [Chunk(f"{paper.paper_id}#{i}", paper.paper_id, i, f"{paper.title}\n{span}")
                for i, span in enumerate(spans[:cap])]

    def cut(paper: StoredPaper) -> bool:
        """Whether the abstract holds more than ``cap`` chunks (so some were left out)."""
        if len(paper.abstract) <= cap * (settings.chunk_size - settings.chunk_overlap):
            return False  # too short for that many chunks: no need to split it
        spans = splitter.split_text(paper.abstract[:prefix])
        if len(paper.abstract) > prefix and len(spans) < cap:
            spans = splitter.split_text(paper.abstract)
        return len(spans) > cap or (len(paper.abstract) > prefix and len(spans) == cap)

    chunk.cut = cut  # type: ignore[attr-defined]
    return chunk


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def _sentences_for_splitter(text: str) -> list[str]:
    parts = _SENTENCE_END.split(text)
    return [p + " " for p in parts[:-1]] + parts[-1:]


# --- the ingest run ---------------------------------------------------------------------

def load_files(paths: list[Path], report: IngestReport) -> list[Paper]:
    """Every usable record in the files; bad files and records are noted in the report."""
    papers: list[Paper] = []
    for path in expand_paths(paths):
        report.files += 1
        try:
            result = load_path(path)
        except SourceError as exc:
            report.failed_files.append(str(exc))
            continue
        except Exception as exc:  # a loader bug must not stop the other files
            report.failed_files.append(
                f"{path}: could not be read ({type(exc).__name__}); please report this file.")
            continue
        report.records += len(result.papers)
        report.skipped.extend(result.skipped)
        papers.extend(result.papers)
    return papers


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
def _writer(store: Store, settings: Settings, wait: bool, on_wait: OnWait | None,
            command: str | None) -> Iterator[None]:
    """Hold the index's write lock (rag/lock.py) for one ingest; re-entrant per store."""
    if store.writing:
        yield
        return
    with writing(settings, wait=wait, on_wait=on_wait, command=command):
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
        raise Interrupted(f"Stopped after {run.done} of {run.total} papers; run the same "
                          "command again to finish.", getattr(exc, "exit_code", 130)) from None
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def ingest_paths(
    paths: list[Path], settings: Settings, store: Store, embedder: Embedder,
    progress: Progress | None = None, *, rebuild: bool = False, wait: bool = True,
    on_wait: OnWait | None = None, command: str | None = None,
) -> IngestReport:
    """Add the papers in these files and folders to the index (``rebuild``: to an empty
    one). Holds the index's write lock; ``wait=False`` fails at once when another process
    holds it (:class:`rag.errors.IndexBusyError`), else ``on_wait`` is told and it waits."""
    report = IngestReport()
    papers = load_files(paths, report)  # read (and refuse) files before touching the index
    if not papers and not rebuild:
        return report
    with _writer(store, settings, wait, on_wait, command):
        if rebuild:
            store.reset()
        if papers:
            ingest_papers(papers, settings, store, embedder, report, progress)
    return report


def ingest_papers(
    papers: list[Paper], settings: Settings, store: Store, embedder: Embedder,
    report: IngestReport | None = None, progress: Progress | None = None, *,
    wait: bool = True, on_wait: OnWait | None = None, command: str | None = None,
) -> IngestReport:
    report = report or IngestReport(records=len(papers))
    run = _Run(total=len(papers))
    with _writer(store, settings, wait, on_wait, command), _stoppable(run):
        _ingest(papers, settings, store, embedder, report, progress, run)
    return report


def _ingest(papers, settings, store: Store, embedder: Embedder, report: IngestReport,
            progress: Progress | None, run: _Run) -> None:
    store.check_model(embedder.name, embedder.dim)
    keys = sorted({title_key(p.title) for p in papers})
    known_ids = store.ids_by_title_key(keys)
    stored = store.get_papers(sorted({pid for ids in known_ids.values() for pid in ids}))
    merged = _merge(papers, {key: [stored[pid] for pid in ids if pid in stored]
                             for key, ids in known_ids.items()}, report)
    existing = store.paper_meta(list(merged))

    to_embed: list[tuple[StoredPaper, str]] = []
    meta_ids, meta_updates = [], []
    for pid, paper in merged.items():
        old = existing.get(pid)
        digest = content_hash(paper.title, paper.abstract)
        if old is not None:
            paper = StoredPaper(
                pid, old.get("title") or paper.title, paper.abstract,
                tuple(sorted(set(paper.dates) | set(split_list(old.get("dates"))))),
                tuple(sorted(set(paper.sources) | set(split_list(old.get("sources"))))),
                paper.authors or old.get("authors", ""), paper.url or old.get("url", ""),
            )
            digest = content_hash(paper.title, paper.abstract)
        if old is None or old.get("hash") != digest:
            to_embed.append((paper, digest))
            if old is None:
                report.added += 1
            else:
                report.updated += 1
            continue
        new_meta = metadata_for_paper(paper, digest, title_key(paper.title))
        if any(new_meta[k] != old.get(k) for k in ("dates", "sources", "authors", "url")):
            meta_ids.append(pid)
            meta_updates.append(new_meta)
            report.updated += 1
        else:
            report.unchanged += 1

    if meta_ids:
        store.update_paper_meta(meta_ids, meta_updates)
    _note_capped([p for p, _ in to_embed], settings, report)
    run.total = len(to_embed)
    if to_embed:
        report.chunks = _embed_and_write(to_embed, settings, store, embedder, progress, run)


def _embed_and_write(items, settings, store: Store, embedder: Embedder, progress,
                     run: _Run) -> int:
    store.check_model(embedder.name, embedder.dim, claim=True)
    # A collection that starts empty has no old chunks to delete: skipping the delete
    # saves ~15% of write time on a first ingest. (A resumed run starts non-empty.)
    fresh = store.count_chunks() == 0
    # Mark the chunk set dirty before the first write: a run killed half-way must not
    # leave a lexical cache that believes it is current.
    store.bump_generation()
    if len(items) >= WORKER_MIN_PAPERS and _rebuildable(embedder, settings):
        written = _embed_in_worker(items, settings, store, fresh, progress, run)
    else:
        written = _embed_in_thread(items, settings, store, embedder, fresh, progress, run)
    store.flush()  # every process then loads the same vector index (see Store.flush)
    store.bump_generation(indexed=True)
    # Build the BM25 cache now rather than in the first question after the ingest
    # (at 100k chunks that took 40 s of a user's first `ask`).
    store.lexical()
    return written


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


def _worker_init(settings: Settings, parent: int) -> None:
    from rag.embed import build_embedder

    _die_with_parent(parent)
    # Ctrl-C reaches the whole terminal process group: the parent stops the run and
    # these workers with it, so they must not print tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["chunker"] = make_chunker(settings)
    _WORKER["embedder"] = build_embedder(settings)


def _worker_job(batch: list[tuple[StoredPaper, str]]):
    chunks = [c for paper, _ in batch for c in _WORKER["chunker"](paper)]
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


def _embed_in_worker(items, settings, store: Store, fresh: bool, progress, run: _Run) -> int:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # "spawn": the parent runs Chroma and onnxruntime threads, which fork would copy
    # in an undefined state.
    ctx = multiprocessing.get_context("spawn")
    batches = [items[i:i + WORKER_PAPERS] for i in range(0, len(items), WORKER_PAPERS)]
    written = 0
    pool = ProcessPoolExecutor(WORKERS, mp_context=ctx, initializer=_worker_init,
                               initargs=(settings, os.getpid()))
    try:
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
            run.done += len(batch)
            if progress:
                progress(run.done, len(items))
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return written


def _embed_in_thread(items, settings, store: Store, embedder: Embedder, fresh: bool,
                     progress, run: _Run) -> int:
    chunker = make_chunker(settings)
    queue: Queue = Queue(maxsize=WRITE_QUEUE)
    failure: list[BaseException] = []
    stop = threading.Event()  # Ctrl-C: write nothing more

    def writer() -> None:
        done = False
        while not done:
            jobs = [queue.get()]
            # Take whatever else is waiting, up to WRITE_CHUNKS: Chroma writes cost far
            # less per row in big calls (measured at 10k papers: 272 chunks/s with
            # 260-chunk calls, 716 chunks/s with 4,000-chunk calls).
            while jobs[-1] is not None and sum(len(j[1]) for j in jobs) < WRITE_CHUNKS:
                try:
                    jobs.append(queue.get_nowait())
                except Empty:
                    break
            if jobs[-1] is None:
                done = True
                jobs.pop()
            if failure or stop.is_set() or not jobs:
                continue
            try:
                _write_batch(store, [p for j in jobs for p in j[0]],
                             [c for j in jobs for c in j[1]],
                             np.concatenate([j[2] for j in jobs]), fresh)
                run.done += sum(len(j[0]) for j in jobs)
            except BaseException as exc:  # handed to the main thread
                failure.append(exc)

    thread = threading.Thread(target=writer, name="abstracta-writer", daemon=True)
    thread.start()
    written = 0
    try:
        for start in range(0, len(items), PAPERS_PER_BATCH):
            if failure:
                break
            batch = items[start:start + PAPERS_PER_BATCH]
            chunks = [c for paper, _ in batch for c in chunker(paper)]
            vectors = embedder.embed_documents([c.text for c in chunks])
            queue.put((batch, chunks, vectors))
            written += len(chunks)
            if progress:
                progress(min(start + PAPERS_PER_BATCH, len(items)), len(items))
    except BaseException:
        stop.set()  # the writer finishes the call it is in and writes nothing more
        raise
    finally:
        while True:  # the end marker must get in even when the queue is full
            try:
                queue.put(None, timeout=0.1)
                break
            except Exception:  # queue.Full
                if stop.is_set():
                    _drain(queue)
        thread.join()
    if failure:
        exc = failure[0]
        if isinstance(exc, AbstractaError):
            raise exc
        raise AbstractaError(f"Ingest stopped: {exc}") from exc
    return written


def _drain(queue: Queue) -> None:
    try:
        while True:
            queue.get_nowait()
    except Empty:
        pass


def _write_batch(store: Store, batch, chunks: list[Chunk], vectors: np.ndarray,
                 fresh: bool = False) -> None:
    ids = [p.paper_id for p, _ in batch]
    metas = {p.paper_id: metadata_for_paper(p, digest, title_key(p.title)) for p, digest in batch}
    store.replace_chunks(
        ids, [c.chunk_id for c in chunks], vectors,
        [chunk_metadata(c.paper_id, c.index, metas[c.paper_id], c.text) for c in chunks],
        delete_old=not fresh,
    )


def ensure_bundled_corpus(settings, store, embedder, progress=None, *, wait: bool = True,
                          on_wait: OnWait | None = None) -> IngestReport | None:
    """Ingest the bundled sample corpus when the index is empty (first use)."""
    if not settings.auto_ingest_bundled or store.has_papers():
        return None
    with _writer(store, settings, wait, on_wait, None):
        if store.has_papers():  # another process did the first run while we waited
            return None
        return ingest_paths([BUNDLED_CORPUS], settings, store, embedder, progress)


__all__ = ["IngestReport", "ingest_paths", "ingest_papers", "ensure_bundled_corpus",
           "content_hash", "make_chunker", "normalize_title", "BUNDLED_CORPUS"]
