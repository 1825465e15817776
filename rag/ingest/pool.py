"""The chunk-and-embed worker processes, which feed the parent's Chroma writes."""

from __future__ import annotations

import os
import signal

import numpy as np

from rag.chunk import make_chunker
from rag.errors import AbstractaError
from rag.ingest.report import Progress, Run
from rag.ingest.write import WRITE_CHUNKS, Item, write_batch
from rag.settings import Settings
from rag.store import Store
from rag.text import words

WORKER_PAPERS = 512  # papers per worker job (~540 chunks with wordllama, ~2,000 with MiniLM)
# Jobs queued in the workers while the parent writes: more than one write call's worth
# (WRITE_CHUNKS), so the workers never wait for a write to end to have work.
WORKER_AHEAD = 10
WORKERS = max(1, min(2, (os.cpu_count() or 1)))  # chunk+embed processes


# The worker process: chunking and embedding, while the parent only writes to Chroma.
# Chroma's Rust bindings hold the GIL while they write, so a writer *thread* cannot
# overlap with chunking and embedding (measured at 10k papers: 106 s wall for 108 s of
# CPU, i.e. serial); a second process can.
# Each worker process's own chunker and embedder, set once by its initializer (a pool
# hands a job nothing else); the parent never fills it.
_WORKER: dict = {}


def _worker_init(settings: Settings, parent: int, threads: int) -> None:
    from rag.embed import build_embedder

    _die_with_parent(parent)
    # Ctrl-C reaches the whole terminal process group: the parent stops the run and
    # these workers with it, so they must not print tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER["chunker"] = make_chunker(settings)
    # Each worker's share of the cores: WORKERS embedders that each spin a thread per
    # core would fight over them: MiniLM's onnxruntime, and the BLAS of wordllama's
    # pooling product, whose idle threads spin (30k papers: 4-6 s of a ~50 s ingest).
    from threadpoolctl import threadpool_limits

    _WORKER["blas"] = threadpool_limits(limits=threads, user_api="blas")
    _WORKER["embedder"] = build_embedder(settings, threads=threads)


def _worker_threads() -> int:
    """Inference threads per worker process: 2 cores, 2 workers -> 1 each."""
    return max(1, (os.cpu_count() or 1) // WORKERS)


def _worker_job(batch: list[Item]):
    """Chunk, embed, and cut each chunk's words for the lexical segment the parent
    records as it writes (rag.store.prepared): here they cost the parent nothing."""
    chunks = [c for item in batch for c in _WORKER["chunker"](item.paper)]
    vectors = _WORKER["embedder"].embed_documents([c.text for c in chunks])
    return batch, chunks, vectors, [words(c.text) for c in chunks]


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


def start_pool(settings: Settings):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # "spawn": the parent runs Chroma and onnxruntime threads, which fork would copy
    # in an undefined state.
    return ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init,
                               initargs=(settings, os.getpid(), _worker_threads()))


def stop_pool(pool) -> None:
    """Stop the workers now: a stopped run must not wait for jobs nobody will write, nor
    forever for a worker that died."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    queue = getattr(pool, "_result_queue", None)  # shutdown() forgets it
    manager = getattr(pool, "_executor_manager_thread", None)  # ... and this
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
    # Then let that thread end. At exit, concurrent.futures wakes every manager thread
    # through a pipe the thread closes as it ends; on Python 3.11 the two race, and a
    # stopped ingest printed "Exception ignored ... OSError: [Errno 9] Bad file
    # descriptor" after its "Stopped after" line (seen once in CI, SIGTERM).
    if manager is not None:
        manager.join(timeout=5)


class WorkerWrites:
    """Chunk and embed in the worker processes, WORKER_AHEAD jobs ahead of the writes;
    the results are written in calls of WRITE_CHUNKS chunks or more (with wordllama a
    job of 512 papers is ~540 chunks, and Chroma's cost per chunk falls with the call's
    size).

    A batch's last jobs and results stay in flight when :meth:`add` returns: the workers
    finish them while the parent merges the next batch, and they are written with that
    batch's first results. (Draining at each batch's end left the workers idle through
    its last write and the next batch's dedupe, and the parent idle until the next
    write's worth was embedded: ~4 s a batch at 100k papers.) The next batch is merged
    against the index, so :func:`rag.ingest.embedding.Embedding.settle` drains first
    when one of its records could be one of the papers still in flight.
    """

    def __init__(self, pool, store: Store, fresh: bool, progress: Progress | None,
                 run: Run) -> None:
        self.pool, self.store, self.fresh, self.progress, self.run = (
            pool, store, fresh, progress, run)
        self.queued: list[list[Item]] = []  # jobs not yet submitted
        self.pending: list[tuple] = []  # (future, its items), in submission order
        self.ready: list[tuple] = []  # results not yet written
        self.written, self.embedded = 0, run.done

    def add(self, items: list[Item]) -> None:
        """Queue a batch's papers; returns once every job of it is submitted."""
        self.queued += [items[i:i + WORKER_PAPERS] for i in range(0, len(items), WORKER_PAPERS)]
        # Progress counts embedded records: the index's (written, or found unchanged by the
        # merge) and those of results not yet written.
        self.embedded = self.run.done + sum(item.records for r in self.ready for item in r[0])
        self._submit()
        while self.queued:
            self._take()

    def in_flight(self) -> list[Item]:
        """The papers submitted or embedded but not yet written."""
        return [item for _, batch in self.pending for item in batch] + [
            item for r in self.ready for item in r[0]]

    def drain(self) -> None:
        """Write everything in flight."""
        while self.pending:
            self._take()
        self._write()

    def _submit(self) -> None:
        while self.queued and len(self.pending) < WORKER_AHEAD:
            batch = self.queued.pop(0)
            self.pending.append((self.pool.submit(_worker_job, batch), batch))

    def _take(self) -> None:
        """Wait for the oldest job; write once a call's worth is ready."""
        from concurrent.futures.process import BrokenProcessPool

        future, _ = self.pending.pop(0)
        try:
            self.ready.append(future.result())
        except BrokenProcessPool as exc:
            raise AbstractaError(
                f"A chunk-and-embed worker process died (out of memory?) after "
                f"{self.run.done} of {self.run.total} papers; run the same command again "
                f"to finish.") from exc
        self._submit()
        self.embedded += sum(item.records for item in self.ready[-1][0])
        if self.progress:  # as the in-process path does: embedded, a write may still be due
            self.progress(self.embedded, self.run.total)
        if sum(len(r[1]) for r in self.ready) >= WRITE_CHUNKS:
            self._write()

    def _write(self) -> None:
        if not self.ready:
            return
        ready, self.ready = self.ready, []
        batch = [item for r in ready for item in r[0]]
        chunks = [c for r in ready for c in r[1]]
        write_batch(self.store, batch, chunks, np.concatenate([r[2] for r in ready]),
                    self.fresh, [cut for r in ready for cut in r[3]])
        self.written += len(chunks)
        self.run.done += sum(item.records for item in batch)
