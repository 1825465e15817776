"""Writing embedded papers to the index: batched Chroma calls, from a writer thread."""

from __future__ import annotations

import threading
from collections import Counter
from queue import Empty, Queue
from typing import NamedTuple

import numpy as np

from rag.errors import AbstractaError
from rag.identity import title_key
from rag.ingest.report import Run
from rag.store import Store, chunk_metadata, metadata_for_paper
from rag.types import Chunk, StoredPaper

WRITE_CHUNKS = 4000  # the writer merges queued steps into Chroma calls of up to this many chunks
WRITE_QUEUE = 64  # embedded steps that may wait for the writer (~16 MB of vectors at most)


class Item(NamedTuple):
    """A paper to chunk, embed and write."""

    paper: StoredPaper
    digest: str  # content_hash of its title and abstract
    records: int  # the records it stands for (progress counts records)
    rewrite: bool  # an earlier batch of this run wrote it: its chunks must be replaced


class Writes:
    """A writer thread: embedded steps in, Chroma writes out (for
    :func:`rag.ingest.embedding.embed_in_thread`).

    Chroma's Rust bindings hold the GIL while they write, so this overlaps little with
    embedding; it keeps the writes in big calls and the main thread free to stop.
    """

    def __init__(self, store: Store, fresh: bool, run: Run) -> None:
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
                write_batch(self.store, [p for j in jobs for p in j[0]],
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


def _drain(queue: Queue) -> None:
    try:
        while True:
            queue.get_nowait()
    except Empty:
        pass


def write_batch(store: Store, batch: list[Item], chunks: list[Chunk], vectors: np.ndarray,
                fresh: bool = False, analyzed: list[list[str]] | None = None) -> None:
    """Write the chunks of ``batch`` (``analyzed``: the words of each chunk's text, when
    a worker process cut them; see :mod:`rag.store.prepared`)."""
    ids = [item.paper.paper_id for item in batch]
    metas = {item.paper.paper_id: metadata_for_paper(item.paper, item.digest,
                                                     title_key(item.paper.title))
             for item in batch}
    counts = Counter(c.paper_id for c in chunks)
    store.replace_chunks(
        ids, [c.chunk_id for c in chunks], vectors,
        [chunk_metadata(c.paper_id, c.index, metas[c.paper_id], c.text, counts[c.paper_id])
         for c in chunks],
        # Fresh collection: nothing to delete, unless this run wrote the paper before.
        delete_old=not fresh or any(item.rewrite for item in batch),
        analyzed=analyzed,
    )
