"""The Chroma side of the index: the client, the chunks collection, errors, reopening.

:class:`ChromaIndex` owns the client and the ``<name>_chunks`` collection, runs every
Chroma call through :meth:`ChromaIndex.read` / :meth:`ChromaIndex.write` (which turn
chromadb's many exception types into :class:`rag.errors.StoreError`), holds the short
``chroma.lock`` around embedded writes and opens (:mod:`rag.lock`), and opens an
embedded index afresh when another process has written it.

Chroma runs embedded (``PersistentClient`` in ``data_dir/chroma``) or as a client of
a ``chroma run`` server (``ABSTRACTA_CHROMA_URL``). Telemetry is off and no collection
has an embedding function: vectors always come from our embedder, so Chroma never
downloads its default model.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import EmbeddingMismatchError, IndexDamagedError, StoreError
from rag.files import write_atomic
from rag.lock import ChromaGuard
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.store.prepared import Prepared

# HNSW search breadth. Chroma's default (100) left 925 of 21,630 chunks of a 20k-paper
# wordllama index (benchmarks/make_corpus.py, many near-duplicate abstracts) unfound by
# their own vector in the top 5; 200 leaves 554 (benchmarks/hnsw_recall.py). The rest are
# graph nodes HNSW cannot reach at any breadth (800 still misses 309): BM25 finds them.
EF_SEARCH = 200
SYNC_THRESHOLD = 1000  # Chroma's default: the vector index is saved every 1,000 records

BATCH, BATCH_OPEN = "batch", "batch_open"  # see ChromaIndex.start_batch


def open_batches(meta: dict) -> list[int]:
    """The write batches the collection metadata lists as still being written."""
    return [int(b) for b in str(meta.get(BATCH_OPEN, "") or "").split() if b.isdigit()]


def next_unsettled(meta: dict) -> int:
    """The lowest batch whose chunks may still change: the oldest open batch, else the
    next one to start. A cache that has read every chunk of the batches below it need
    not read them again."""
    return min([*open_batches(meta), int(meta.get(BATCH, 0) or 0) + 1])


# Written with a new value whenever the collection's metadata or identity changes
# (generation, a rebuild's or a repair's swap); see ChromaIndex.refresh.
CHANGED_MARKER = "index-changed"

# What Chroma says when its vector index and its records disagree: a damaged index
# (two processes wrote it at once), not a permissions problem.
DAMAGED = ("Error finding id", "Error getting embedding", "Error loading hnsw index")
# What embedded Chroma said to a reader while other processes were writing the index
# (seen once, three writers filling a fresh collection; a plain add read from another
# process does not cause it): a passing state of the vector index's files, so the reader
# opens the index again and retries for a while.
NOT_YET = "Nothing found on disk"
NOT_YET_TRIES, NOT_YET_WAIT_S = 20, 0.25  # up to 5 s: the first add of a batch finishing


def is_damaged(exc: BaseException) -> bool:
    return any(marker in str(exc) for marker in DAMAGED)


# What SQLite, the OS and Chroma say when a write meets a full disk.
FULL = ("disk is full", "No space left")
# Chroma's compaction (applying its write log to the segments) fails with these whatever
# the cause; on a disk with less than LOW_SPACE_MB free, the cause is the full disk.
COMPACTION = ("Error in compaction", "Failed to apply logs")
LOW_SPACE_MB = 64


def free_mb(folder: Path) -> float | None:
    """Free space on the disk holding ``folder`` (or its nearest existing parent), in MB."""
    for path in (folder, *folder.parents):
        try:
            return shutil.disk_usage(path).free / 2**20
        except OSError:
            continue
    return None


def disk_full(exc: BaseException, folder: Path) -> str:
    """"the disk holding DIR is full (N MB free)" when ``exc`` (or an exception it was
    raised from) is ENOSPC, or a Chroma compaction failure on an almost full disk; else ""."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    free = free_mb(folder)
    full = any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in chain) or any(
        m in str(e) for e in chain for m in FULL)
    if not full and not (free is not None and free < LOW_SPACE_MB
                         and any(m in str(e) for e in chain for m in COMPACTION)):
        return ""
    return f"the disk holding {folder} is full ({free or 0:,.0f} MB free)"


def wrap_error(exc: Exception, settings: Settings, doing: str) -> StoreError:
    """Chroma's exception as our one-line error, naming the index and what to do."""
    where = f"the Chroma server at {settings.chroma_url}" if settings.chroma_url else (
        f"the index in {settings.data_dir}")
    if is_damaged(exc):
        detail = next(m for m in DAMAGED if m in str(exc))
        return IndexDamagedError(
            f"Cannot {doing} {where}: it is damaged ({detail}: its vectors and records "
            "disagree, e.g. after two processes wrote it at once); run `ask doctor --repair` "
            "to fix it (no paper is lost).")
    full = "" if settings.chroma_url else disk_full(exc, settings.data_dir)
    if full:
        return StoreError(f"Cannot {doing} {where}: {full}; free space and run the same "
                          "command again (nothing indexed is lost).")
    hint = ("is it running? Start it with `chroma run --path DIR` or unset ABSTRACTA_CHROMA_URL."
            if settings.chroma_url else "check that the folder is readable and writable, "
            "or set ABSTRACTA_DATA_DIR / --data-dir to another folder.")
    detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    if any(m in detail for m in FULL):  # the server's disk
        hint = "the disk is full: free some space and run it again (nothing indexed is lost)."
    return StoreError(f"Cannot {doing} {where} ({detail}); {hint}")


def chroma_settings():
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def persistent_client(path: Path, fresh: bool = False):
    """An embedded client; ``fresh`` skips the system chromadb caches per path (which
    holds the vector index as this process first read it)."""
    import chromadb

    if fresh:
        forget_systems(path)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings())


def forget_systems(path: Path) -> None:
    """Drop chromadb's cached systems of ``path``, so the next client reads it afresh.
    Not stopped: another thread may still be reading through one; it goes when the last
    reference does."""
    from chromadb.api.shared_system_client import SharedSystemClient

    cache = SharedSystemClient._identifier_to_system
    for key in [k for k in cache if os.path.realpath(k) == os.path.realpath(path)]:
        del cache[key]
        SharedSystemClient._identifier_to_refcount.pop(key, None)


def mark_changed(settings: Settings) -> None:
    """Tell the other processes of this embedded index to look again (see
    :meth:`ChromaIndex.refresh`). A folder that cannot be written has no writers to
    announce; they fall back to asking Chroma every time."""
    if settings.chroma_url:
        return
    with contextlib.suppress(OSError):  # a reader sees the old value or the new one
        write_atomic(settings.data_dir / CHANGED_MARKER, uuid.uuid4().hex.encode())


def chunks_name(settings: Settings) -> str:
    return f"{settings.collection}_chunks"


def create_chunks(client, name: str, metadata: dict | None = None, *, existing: bool = True):
    """The chunks collection (cosine HNSW at :data:`EF_SEARCH`, no embedding function)."""
    make = client.get_or_create_collection if existing else client.create_collection
    return make(name, embedding_function=None, metadata=metadata or {"kind": "chunks"},
                configuration={"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}})


class ChromaIndex:
    """The client and the chunks collection, with errors wrapped and reopening handled."""

    def __init__(self, settings: Settings, client, collection):
        self.settings = settings
        self.client = client
        # Set, except while :meth:`reopen` has let the old copy of the vector index go and
        # not yet loaded the new one: :attr:`collection` waits for it then.
        self._open = threading.Event()
        self._open.set()
        self.collection = collection
        self.read_only = ""  # why writes are refused (a read-only or full-disk index)
        # Embedded only: the short-held lock around Chroma writes and opens (rag/lock.py).
        self.guard = None if settings.chroma_url else ChromaGuard(settings.data_dir)
        self.reopen_lock = threading.RLock()
        self.writing = False  # this process holds the write lock (rag.lock.writing)
        self.batch: int | None = None  # the write batch this process has open
        # The lexical segment of this batch's writes, recorded as they are written (an
        # ingest's: rag.store.prepared); the cache takes it once the batch is closed.
        self.prepared: Prepared | None = None
        self.seen_generation = self.generation()
        self.seen_marker: str | None = None  # CHANGED_MARKER's value at the last fetch
        if self.guard is not None and self._marker() is None:  # an index made before it
            mark_changed(settings)

    @property
    def collection(self):
        """The chunks collection (waits while a release-first :meth:`reopen` loads it)."""
        self._open.wait()
        if self._collection is None:
            raise StoreError(f"The index at {self.settings.data_dir / 'chroma'} could not be "
                             "opened again after a write; run the same command again.")
        return self._collection

    @collection.setter
    def collection(self, value) -> None:
        self._collection = value

    # --- collection metadata ------------------------------------------------------------
    def metadata(self) -> dict:
        return dict(self.collection.metadata or {})

    def generation(self) -> str:
        return self.metadata().get("generation", "")

    def set_metadata(self, meta: dict) -> None:
        self.write("modify", metadata=meta)
        mark_changed(self.settings)

    def check_model(self, name: str, dim: int, location: str, claim: bool) -> None:
        """See :meth:`rag.store.Store.check_model`."""
        meta = self.metadata()
        recorded = meta.get("embed_model")
        if recorded and recorded != name:
            raise EmbeddingMismatchError(
                f"The index at {location} was built with embedding model '{recorded}', "
                f"but '{name}' is configured; run `ask ingest --rebuild` to re-embed with "
                f"'{name}', or set ABSTRACTA_EMBEDDER back."
            )
        if recorded and dim and meta.get("dim") not in (None, dim):
            raise EmbeddingMismatchError(
                f"The index holds {meta.get('dim')}-d vectors but '{name}' makes {dim}-d ones; "
                "run `ask ingest --rebuild`."
            )
        if claim and not recorded:
            meta.update(embed_model=name, dim=dim)
            self.set_metadata(meta)

    # --- calls ----------------------------------------------------------------------------
    def writable(self) -> None:
        if self.read_only:
            reason = self.read_only.split("; answering from", 1)[0]
            if reason.startswith("the disk holding"):
                raise StoreError(f"Cannot write: {reason}; free space and run the same command "
                                 "again (nothing indexed is lost).")
            raise StoreError(f"Cannot write: {self.read_only}. Make the folder writable (or free "
                             "disk space) and run it again; nothing indexed is lost.")

    def exclusive(self):
        """Hold ``chroma.lock`` exclusively (embedded; nothing to hold with a server)."""
        return self.guard.hold(exclusive=True) if self.guard else contextlib.nullcontext()

    def write(self, method: str, **kwargs):
        """``collection.<method>(**kwargs)`` as a write, under ``chroma.lock``."""
        self.writable()
        with self.exclusive():
            return self._once(method, "write", kwargs)

    def read(self, method: str, doing: str = "read", **kwargs):
        """``collection.<method>(**kwargs)``; a read that meets vectors this process has
        never seen opens the index afresh and asks again once."""
        try:
            return getattr(self.collection, method)(**kwargs)
        except StoreError:
            raise
        except Exception as exc:
            if NOT_YET in str(exc) and self.reopenable():
                return self._when_written(method, doing, kwargs)
            if not (is_damaged(exc) and self.reopenable()):
                raise wrap_error(exc, self.settings, doing) from exc
        # Embedded Chroma keeps the vector index in memory, read once per process: a
        # process that opened the index before another one wrote it finds records whose
        # vectors it has never seen ("Error finding id"). Open it afresh, ask again once.
        self.reopen()
        return self._once(method, doing, kwargs)

    def _when_written(self, method: str, doing: str, kwargs: dict):
        """Ask again, the index opened afresh each time, until another process's first
        write is on disk (see NOT_YET); then as :meth:`_once` would."""
        import time

        for _ in range(NOT_YET_TRIES):
            time.sleep(NOT_YET_WAIT_S)
            self.reopen()
            try:
                return getattr(self.collection, method)(**kwargs)
            except Exception as exc:  # chromadb raises many types
                if NOT_YET not in str(exc):
                    raise wrap_error(exc, self.settings, doing) from exc
        return self._once(method, doing, kwargs)

    def _once(self, method: str, doing: str, kwargs: dict):
        try:
            return getattr(self.collection, method)(**kwargs)
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises many types; all mean the same to a user
            raise wrap_error(exc, self.settings, doing) from exc

    def fetch(self) -> None:
        """The collection as the server or the folder has it now (fresh metadata): after a
        swap (:mod:`rag.store.repair`), the new one under the same name. Embedded, under
        the shared ``chroma.lock``, so never in the middle of a swap."""
        hold = self.guard.hold(exclusive=False) if self.guard else contextlib.nullcontext()
        try:
            with hold:
                self.collection = self.client.get_collection(self.collection.name,
                                                             embedding_function=None)
        except Exception as exc:
            raise wrap_error(exc, self.settings, "read") from exc

    # --- other processes' writes (embedded) -----------------------------------------------
    def reopenable(self) -> bool:
        return self.guard is not None and not self.read_only and not self.writing

    def reopen(self, release_first: bool = False) -> None:
        """Open the embedded index afresh: the saved vector index plus the write log, read
        under ``chroma.lock`` so that no writer is saving it meanwhile.

        ``release_first``: let this process's copy of the vector index go before loading
        the new one, instead of holding both for a moment. At 1M chunks (wordllama) each
        copy is ~1.4 GB, and the end of an ingest held both: a 9 s spike from 2.9 to 4.4
        GiB, the run's peak. Meanwhile :attr:`collection` waits; a call already running
        keeps the old copy alive until it returns."""
        if self.guard is None:
            self.fetch()
            return
        with self.reopen_lock, self.guard.hold(exclusive=False):
            path = self.settings.data_dir / "chroma"
            name = self.collection.name  # by name: a rebuild's writer reopens its copy
            if release_first:
                self._open.clear()
                forget_systems(path)
                self.client = self._collection = None
                gc.collect()  # the old client sits in reference cycles (see below)
            try:
                client = persistent_client(path, fresh=True)
                collection = create_chunks(client, name)
                collection.get(ids=["\x00"], include=[])  # loads the index now, under the lock
            except Exception as exc:
                raise wrap_error(exc, self.settings, "open") from exc
            finally:
                self._open.set()
            self.client, self.collection = client, collection
            self.seen_generation = self.generation()
        # Embedded Chroma holds the whole vector index in memory per client, and the
        # replaced client lives in a reference cycle until the cyclic collector happens to
        # run: measured at 64k chunks, each reopen added 108 MiB that gc.collect() gave
        # back, so an ingest's BM25 build ran beside two old copies and a UI serving
        # through several ingests kept one per ingest. Reopens are rare (after a write).
        gc.collect()

    def refresh(self) -> None:
        """Catch up with other processes' writes: a new generation means a writer started
        or finished, so an embedded index is opened afresh (cheap otherwise).

        Embedded, the collection metadata is fetched only when CHANGED_MARKER has a new
        value: every question asks, and fetching it from Chroma cost 0.8 ms a time (a
        10-byte file read costs 20 us). The marker is read before the fetch, so a change
        made during the fetch still shows as a new value next time.
        """
        marker = self._marker()
        if marker is not None and marker == self.seen_marker:
            return
        self.fetch()
        self.seen_marker = marker
        if self.reopenable() and self.generation() != self.seen_generation:
            with self.reopen_lock:
                if self.reopenable():
                    self.reopen()

    def _marker(self) -> str | None:
        if self.guard is None:  # a server: other machines write it, ask every time
            return None
        try:
            return (self.settings.data_dir / CHANGED_MARKER).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            return None

    def begin_write(self) -> None:
        """This process now holds the write lock: start from the current index (another
        writer may have written since it was opened), and stop reopening it."""
        with self.reopen_lock:
            self.writing = False
            if self.guard is not None and not self.read_only:
                self.reopen()
            self.writing = True

    def end_write(self) -> None:
        with self.reopen_lock:
            self.writing = False
            self.seen_generation = self.generation()

    def flush(self) -> None:
        """Save the whole embedded vector index now (end of an ingest).

        Chroma saves it every ``sync_threshold`` records; the rest stays in its write log,
        and every process that opens the index inserts those into its own copy of the
        graph, in a thread-dependent order: each process got a slightly different graph,
        so a chunk found in one process was missed in the next. Saved whole, every
        process loads the same graph. Chroma has no call for it: the threshold is set to
        1 for one reopen (which replays the log and saves), then set back. Also brings
        an older index's ``ef_search`` up to :data:`EF_SEARCH`.
        """
        if self.guard is None or self.read_only:
            return
        with self.reopen_lock, self.guard.hold(exclusive=True):
            hnsw = {"sync_threshold": 1}
            if (self.collection.configuration or {}).get("hnsw", {}).get("ef_search") != EF_SEARCH:
                hnsw["ef_search"] = EF_SEARCH
            self._once("modify", "write", {"configuration": {"hnsw": hnsw}})
            try:
                self.reopen(release_first=True)
            finally:
                if self._collection is not None:  # else the open's own error is raised
                    self._once("modify", "write",
                               {"configuration": {"hnsw": {"sync_threshold": SYNC_THRESHOLD}}})

    def bump_generation(self, indexed: bool = False) -> None:
        """Mark the chunk set as changed (lexical caches everywhere become stale);
        ``indexed``: a write has completed, so the index holds papers (and this process's
        write batch, if one is open, is closed: see :meth:`start_batch`)."""
        also: dict = {"indexed": True} if indexed else {}
        if indexed and self.batch is not None:
            also[BATCH_OPEN] = " ".join(
                str(b) for b in open_batches(self._fresh_metadata()) if b != self.batch)
            self.batch = None
        self.seen_generation = self.renew("generation", **also)

    def start_batch(self) -> int:
        """Open a new write batch: every chunk written until :meth:`bump_generation`
        (``indexed``) carries its number (``batch`` in the chunk metadata), so a lexical
        cache catches up by reading the chunks of the batches it has not seen
        (:mod:`rag.store.cache`). The collection metadata keeps the last number
        (``batch``) and the batches still being written (``batch_open``). Embedded, this
        process holds the write lock, so an open batch of another process is one that
        was killed: it is dropped (its chunks still count, as written)."""
        meta = self._fresh_metadata()
        self.batch = int(meta.get(BATCH, 0) or 0) + 1
        others = open_batches(meta) if self.guard is None else []
        self.seen_generation = self.renew(
            "generation", **{BATCH: self.batch, BATCH_OPEN: " ".join(map(str, [*others,
                                                                             self.batch]))})
        return self.batch

    def _fresh_metadata(self) -> dict:
        self.fetch()
        return self.metadata()

    def set_key(self, key: str, value: str) -> None:
        """One key of the collection metadata, the others as they are now."""
        self.fetch()
        self.set_metadata({**self.metadata(), key: value})

    def renew(self, token: str, **also) -> str:
        """A new random value for ``token`` in the collection metadata (and ``also``)."""
        self.fetch()
        meta = {**self.metadata(), **also, token: uuid.uuid4().hex}
        self.set_metadata(meta)
        return meta[token]
