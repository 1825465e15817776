"""An ingest run: files or records in, batch by batch through merge, dedupe and embed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from rag.chunk import make_chunker
from rag.embed import Embedder
from rag.ingest.dedupe import dedupe_batch
from rag.ingest.embedding import Embedding
from rag.ingest.read import file_batches, list_batches, open_files
from rag.ingest.report import IngestReport, Progress, Run
from rag.ingest.seen import Seen
from rag.ingest.session import OnWait, write_session
from rag.ingest.stop import stoppable
from rag.settings import Settings
from rag.store import Store
from rag.store.store import BUNDLED_COMPLETE, BUNDLED_STARTED
from rag.types import Paper, StoredPaper

BUNDLED_CORPUS = Path(__file__).parent.parent / "data" / "corpus"


def ingest_paths(
    paths: list[Path], settings: Settings, store: Store, embedder: Embedder,
    progress: Progress | None = None, *, rebuild: bool = False, wait: bool = True,
    on_lock_wait: OnWait | None = None, command: str | None = None,
) -> IngestReport:
    """Add the papers in these files and folders to the index (``rebuild``: to a new,
    empty one, swapped in once complete; see :meth:`Store.rebuilding`). Holds the
    index's write lock; ``wait=False`` fails at once when another process holds it
    (:class:`rag.errors.IndexBusyError`), else ``on_lock_wait`` is told and it waits.

    The files are read as a stream (see :func:`file_batches`): memory holds one batch
    of records, however large the files. ``progress`` counts records (a first pass
    counts them without keeping any)."""
    report = IngestReport()
    streams = open_files(paths, report)  # check (and refuse) files before touching the index
    if not streams and not rebuild:
        return report
    with write_session(store, settings, wait=wait, on_lock_wait=on_lock_wait,
                       command=command), store.rebuilding() if rebuild else nullcontext():
        # A rebuild fills a new index beside the live one and swaps it in at the end:
        # readers answer from the old one meanwhile, and a stopped rebuild leaves it as it was.
        if streams:
            run = Run(total=sum(s.records for s in streams))
            with stoppable(run), _bundled_run(store, paths):
                _ingest(file_batches(streams, report), settings, store, embedder, report,
                        progress, run)
    return report


@contextmanager
def _bundled_run(store: Store, paths: list[Path]) -> Iterator[None]:
    """A run of the bundled corpus is recorded as started before it writes anything and
    as complete only once it ends without an error: a run stopped part-way (Ctrl-C,
    SIGTERM, SIGKILL, a full disk) leaves "started", which the next `ask` resumes and
    `ask doctor` reports (:mod:`rag.ingest.bundled`)."""
    corpus = BUNDLED_CORPUS.resolve()
    if not any(Path(p).resolve() == corpus for p in paths):
        yield
        return
    if store.bundled != BUNDLED_STARTED:
        store.mark_bundled(BUNDLED_STARTED)
    yield
    store.mark_bundled(BUNDLED_COMPLETE)


def ingest_papers(
    papers: list[Paper], settings: Settings, store: Store, embedder: Embedder,
    report: IngestReport | None = None, progress: Progress | None = None, *,
    wait: bool = True, on_lock_wait: OnWait | None = None, command: str | None = None,
) -> IngestReport:
    report = report or IngestReport(records=len(papers))
    run = Run(total=len(papers))
    with write_session(store, settings, wait=wait, on_lock_wait=on_lock_wait,
                       command=command), stoppable(run):
        _ingest(list_batches(papers), settings, store, embedder, report, progress, run)
    return report


def _ingest(batches: Iterator[list[Paper]], settings: Settings, store: Store,
            embedder: Embedder, report: IngestReport, progress: Progress | None,
            run: Run) -> None:
    """Each batch: merge its records with the index's papers of the same titles, update
    the listings of unchanged papers, then chunk, embed and write the rest, all before
    the next batch is merged (which then finds this one's papers in the index)."""
    seen = Seen()
    writer = Embedding(settings, store, embedder, progress, run)
    try:
        for n, papers in enumerate(batches):
            if n == 0:
                store.check_model(embedder.name, embedder.dim)
            writer.settle(papers)  # papers still in flight that these records could meet
            items = dedupe_batch(papers, store, report, seen, run)
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
