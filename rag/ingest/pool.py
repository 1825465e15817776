"""The chunk-and-embed worker processes, which feed the parent's Chroma writes."""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
from pathlib import Path

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
MAX_WORKERS = 2  # chunk+embed processes at most


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
    # Each worker's share of the cores: workers that each spin a thread per
    # core would fight over them: MiniLM's onnxruntime, and the BLAS of wordllama's
    # pooling product, whose idle threads spin (30k papers: 4-6 s of a ~50 s ingest).
    from threadpoolctl import threadpool_limits

    _WORKER["blas"] = threadpool_limits(limits=threads, user_api="blas")
    _WORKER["embedder"] = build_embedder(settings, threads=threads)


def worker_plan(settings: Settings) -> tuple[int, int]:
    """(worker processes, inference threads in each) for this machine and embedder.

    The parent's Chroma writes take more than a core of their own (the bare-Chroma floor
    of 300k papers: 581 s of CPU in 493 s). A light embedder (wordllama, ~0.3 ms a
    paper) keeps up with them from one worker, and a second only takes cores from the
    writes (100k papers on 2 cores: 187 s with two workers, 164 s with one); a heavy one
    (MiniLM, ~150 ms a paper on one thread here) is what the run waits for: one worker
    per core.
    Worked example, 2 cores: wordllama -> (1, 1); MiniLM -> (2, 1). 8 cores: (2, 1) and
    (2, 4).
    """
    from rag.embed import EMBEDDERS

    cores = os.cpu_count() or 1
    if getattr(EMBEDDERS.get(settings.embedder), "light", False):
        return max(1, min(MAX_WORKERS, cores - 1)), 1
    workers = max(1, min(MAX_WORKERS, cores))
    return workers, max(1, cores // workers)


def _worker_job(batch: list[Item]):
    """Chunk, embed, and cut each chunk's words for the lexical segment the parent
    records as it writes (rag.store.prepared): here they cost the parent nothing."""
    chunks = [c for item in batch for c in _WORKER["chunker"](item.paper)]
    vectors = _WORKER["embedder"].embed_documents([c.text for c in chunks])
    return chunks, vectors, [words(c.text) for c in chunks]


def _worker_main(conn, settings: Settings, parent: int, threads: int, folder: str) -> None:
    """A worker process: job numbers in through ``conn``, each job's papers read from
    ``<n>.job`` in ``folder`` and its result written to ``<n>.out``; then ``(n, None)``
    back, or ``(n, the exception)`` when the job (or this worker's start) failed."""
    try:
        _worker_init(settings, parent, threads)
        failed: BaseException | None = None
    except Exception as exc:  # answered to every job: the parent raises it
        failed = exc
    where = Path(folder)
    while True:
        try:
            n = conn.recv()
        except (EOFError, OSError):  # the parent is gone or closed the pipe
            return
        if n is None:
            return
        try:
            if failed is not None:
                raise failed
            job = where / f"{n}.job"
            batch = pickle.loads(job.read_bytes())
            job.unlink()
            result = pickle.dumps(_worker_job(batch), protocol=pickle.HIGHEST_PROTOCOL)
            (where / f"{n}.tmp").write_bytes(result)
            (where / f"{n}.tmp").replace(where / f"{n}.out")  # whole, or not there
            conn.send((n, None))
        except Exception as exc:
            try:
                conn.send((n, exc))
            except Exception:  # an exception that cannot be pickled
                conn.send((n, RuntimeError(f"{type(exc).__name__}: {exc}")))


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


class Workers:
    """Spawned processes (:func:`worker_plan`) that chunk and embed jobs of papers, in order.

    Not a ProcessPoolExecutor: its results, and the jobs it hands on, pass through a
    thread of this process, which needs the GIL, and Chroma's bindings hold the GIL for
    a whole write (~4 s for 4,000 chunks). So during each write the workers finished
    one job each and then waited (measured: 2 jobs of 0.2 s done during a 2.3 s upsert,
    where two free workers do 23), and at 100k papers the parent then waited 27 s of a
    187 s ingest for results. Here a job's papers are a file the worker reads, its result
    a file the worker writes, and only job numbers pass through each worker's pipe: a
    few bytes, which the pipe's buffer holds without this process reading, so the
    workers run on through the writes.

    The folder is in the system's temp folder and removed by :meth:`close` and
    :meth:`stop`; a parent killed by SIGKILL leaves it (its workers die with it).
    """

    def __init__(self, settings: Settings) -> None:
        import multiprocessing
        import tempfile

        # "spawn": the parent runs Chroma and onnxruntime threads, which fork would copy
        # in an undefined state.
        ctx = multiprocessing.get_context("spawn")
        try:
            self.folder = Path(tempfile.mkdtemp(prefix="abstracta-ingest-"))
        except OSError as exc:
            raise _folder_error(Path(tempfile.gettempdir()), exc) from exc
        self.procs: list = []
        self.conns: list = []
        self.owner: dict[int, int] = {}  # job number -> the worker doing it
        count, threads = worker_plan(settings)
        self.load = [0] * count  # jobs handed to each worker and not yet taken back
        self.answers: dict[int, BaseException | None] = {}  # arrived, not yet taken
        self.next = 0
        try:
            for _ in range(count):
                here, there = ctx.Pipe()
                self.conns.append(here)
                proc = ctx.Process(target=_worker_main, daemon=True, name="abstracta-embed",
                                   args=(there, settings, os.getpid(), threads,
                                         str(self.folder)))
                try:
                    proc.start()
                finally:
                    there.close()
                self.procs.append(proc)
        except OSError as exc:  # no more processes or memory for one (EAGAIN, ENOMEM)
            # The workers already started and the folder go now, not at exit.
            self.stop()
            raise AbstractaError(
                f"Could not start the ingest's worker processes ({exc.strerror or exc}); "
                f"free memory or raise the process limit (ulimit -u), then run the same "
                f"command again (what is indexed stays).") from exc
        except BaseException:
            self.stop()
            raise

    def submit(self, batch: list[Item]) -> int:
        """Hand a job to the least loaded worker; its number, for :meth:`result`."""
        n, self.next = self.next, self.next + 1
        try:
            (self.folder / f"{n}.job").write_bytes(
                pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError as exc:  # a full or vanished temp folder
            raise _folder_error(self.folder, exc) from exc
        worker = min(range(len(self.conns)), key=self.load.__getitem__)
        self.conns[worker].send(n)
        self.owner[n], self.load[worker] = worker, self.load[worker] + 1
        return n

    def result(self, n: int) -> tuple:
        """Wait for job ``n``: (chunks, vectors, the words of each chunk)."""
        worker = self.owner.pop(n)
        conn, proc = self.conns[worker], self.procs[worker]
        while n not in self.answers:
            if conn.poll(1.0):
                try:
                    done, failure = conn.recv()
                except (EOFError, OSError) as exc:
                    raise WorkerDied from exc
                self.answers[done] = failure
            elif not proc.is_alive():
                raise WorkerDied
        self.load[worker] -= 1
        failure = self.answers.pop(n)
        if isinstance(failure, OSError) and str(self.folder) in str(failure.filename):
            raise _folder_error(self.folder, failure) from failure
        if failure is not None:
            raise failure
        out = self.folder / f"{n}.out"
        result = pickle.loads(out.read_bytes())
        out.unlink()
        return result

    def close(self) -> None:
        """Let the workers finish and end (every job taken back by then)."""
        for conn in self.conns:
            with contextlib.suppress(OSError):  # that worker is gone already
                conn.send(None)
        for proc in self.procs:
            proc.join(timeout=30)
        self.stop()

    def stop(self) -> None:
        """Stop the workers now (a stopped run writes nothing more) and remove the folder."""
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
        for proc in self.procs:
            proc.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.procs, self.conns = [], []
        shutil.rmtree(self.folder, ignore_errors=True)


def _folder_error(folder: Path, exc: OSError) -> AbstractaError:
    return AbstractaError(
        f"The ingest's worker files could not be written in {folder} "
        f"({exc.strerror or exc}); free space there or set TMPDIR to another folder, then "
        f"run the same command again (what is indexed stays).")


class WorkerDied(Exception):
    """A worker process ended without answering (killed: out of memory?)."""


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

    def __init__(self, workers: Workers, store: Store, fresh: bool,
                 progress: Progress | None, run: Run) -> None:
        self.workers, self.store, self.fresh, self.progress, self.run = (
            workers, store, fresh, progress, run)
        self.queued: list[list[Item]] = []  # jobs not yet submitted
        self.pending: list[tuple[int, list[Item]]] = []  # (job number, its items), in order
        self.ready: list[tuple] = []  # (items, chunks, vectors, words) not yet written
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
            self.pending.append((self.workers.submit(batch), batch))

    def _take(self) -> None:
        """Wait for the oldest job; write once a call's worth is ready."""
        n, batch = self.pending.pop(0)
        try:
            self.ready.append((batch, *self.workers.result(n)))
        except WorkerDied as exc:
            raise AbstractaError(
                f"A chunk-and-embed worker process died (out of memory?) after "
                f"{self.run.done} of {self.run.total} papers; run the same command again "
                f"to finish.") from exc
        self._submit()
        self.embedded += sum(item.records for item in batch)
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
