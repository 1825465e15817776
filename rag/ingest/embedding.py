"""Chunking and embedding a run's papers, here or in worker processes, for the writes."""

from __future__ import annotations

from collections.abc import Callable

from rag.chunk import make_chunker
from rag.embed import Embedder, rebuildable
from rag.identity import paper_id, title_key
from rag.ingest.pool import Workers, WorkerWrites
from rag.ingest.report import Progress, Run
from rag.ingest.write import Item, Writes
from rag.settings import Settings
from rag.store import Store
from rag.types import Chunk, Paper, StoredPaper

WORKER_MIN_PAPERS = 2000  # from this many papers on, chunk and embed in a worker process
PAPERS_PER_BATCH = 64  # papers embedded per step here (and progress granularity)


class Embedding:
    """Chunk, embed and write the papers of a run, batch after batch.

    Started on the first paper to embed (a run with none leaves the index's generation
    alone); worker processes, once started, serve the rest of the run. ``finish`` saves
    the vector index whole and builds the BM25 cache.
    """

    def __init__(self, settings: Settings, store: Store, embedder: Embedder,
                 progress: Progress | None, run: Run) -> None:
        self.settings, self.store, self.embedder = settings, store, embedder
        self.progress, self.run = progress, run
        self.started, self.fresh, self.written = False, False, 0
        self.pool: Workers | None = None
        self.workers: WorkerWrites | None = None  # the pool's writes, in flight between batches
        self.chunker: Callable[[StoredPaper], list[Chunk]] | None = None

    def write(self, items: list[Item]) -> None:
        if not self.started:
            self._start()
        if self.pool is None and len(items) >= WORKER_MIN_PAPERS and rebuildable(
                self.embedder, self.settings):
            self.pool = Workers(self.settings)
            self.workers = WorkerWrites(self.pool, self.store, self.fresh, self.progress,
                                        self.run)
        if self.workers is not None:
            self.workers.add(items)
            return
        if self.chunker is None:
            self.chunker = make_chunker(self.settings)
        self.written += embed_in_thread(items, self.chunker, self.store, self.embedder,
                                        self.fresh, self.progress, self.run)

    def _start(self) -> None:
        self.started = True
        self.store.check_model(self.embedder.name, self.embedder.dim, claim=True)
        # A collection that starts empty has no old chunks to delete: skipping the delete
        # saves ~15% of write time on a first ingest. (A resumed run starts non-empty.)
        self.fresh = self.store.count_chunks() == 0
        # Mark the chunk set dirty before the first write: a run killed half-way must not
        # leave a lexical cache that believes it is current. The chunks written carry
        # the batch's number: the lexical cache reads only those to catch up.
        # Embedded, the batch's chunks are counted into its lexical segment as they are
        # written, so finish() need not read them back (rag.store.prepared).
        self.store.start_recorded_batch(empty=self.fresh)

    def settle(self, papers: list[Paper]) -> None:
        """Before the next batch is merged against the index: write the papers still in
        flight if one of its records could be one of them (same title key or id), so the
        merge finds them in the index as it would after a drained batch."""
        if self.workers is None:
            return
        flight = self.workers.in_flight()
        if not flight:
            return
        keys = {title_key(item.paper.title) for item in flight}
        ids = {item.paper.paper_id for item in flight}
        if any(title_key(p.title) in keys or paper_id(p.title, p.arxiv_id, p.record_id) in ids
               for p in papers):
            self.workers.drain()

    def abort(self) -> None:
        self.workers = None  # what was in flight is not written; a new run redoes it
        if self.pool is not None:
            self.pool.stop()
            self.pool = None
        self.store.drop_recorded()

    def finish(self) -> int:
        """Chunks written. Saves the vector index and builds the BM25 cache."""
        if self.workers is not None:
            self.workers.drain()
            self.written += self.workers.written
            self.workers = None
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if not self.started:
            return 0
        self.store.flush()  # every process then loads the same vector index (Store.flush)
        self.store.bump_generation(indexed=True)
        # Build the BM25 cache now rather than in the first question after the ingest
        # (at 100k chunks that took 40 s of a user's first `ask`).
        self.store.lexical()
        return self.written


def embed_in_thread(items: list[Item], chunker, store: Store, embedder: Embedder,
                    fresh: bool, progress: Progress | None, run: Run) -> int:
    """Chunk and embed here, PAPERS_PER_BATCH papers a step, while a thread writes."""
    writes = Writes(store, fresh, run)
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
