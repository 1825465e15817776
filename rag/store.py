"""The index: one Chroma collection and a lexical (BM25) index kept in step.

- ``<name>_chunks``: one record per chunk (vector, text, ``paper_id``, title, dates,
  sources). Chunk ``<paper id>#0`` also carries the paper record: authors, link,
  title key and the content hash ingest compares against (and the abstract, unless
  the chunk text is exactly title + abstract). It is written *after* the paper's
  other chunks, so it doubles as a commit marker: a paper whose chunk #0 is missing
  or stale is simply ingested again. (A second collection of paper records would cost
  as much to write as the chunks.)
- The lexical index (:mod:`rag.lexical`) is BM25 over the chunk texts, cached on local disk.
  The chunks collection carries a ``generation`` token in its metadata, renewed
  by every write; a process whose cache names another generation rebuilds it
  from the collection. That keeps BM25 in step in server mode too, where other
  machines write the same collection, and a query process loads the cache
  (memory-mapped) instead of reading the whole collection.

Chroma runs embedded (``PersistentClient`` in ``data_dir/chroma``) or as a client
of a ``chroma run`` server (``ABSTRACTA_CHROMA_URL``). Telemetry is off and no
collection has an embedding function: vectors always come from our embedder,
so Chroma never downloads its default model.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import uuid
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from rag import lexical
from rag.errors import EmbeddingMismatchError, IndexDamagedError, StoreError
from rag.lexical import Lexical
from rag.lock import ChromaGuard
from rag.settings import Settings
from rag.types import StoredPaper

# HNSW search breadth. Chroma's default (100) left 925 of 21,630 chunks of a 20k-paper
# wordllama index (benchmarks/make_corpus.py, many near-duplicate abstracts) unfound by
# their own vector in the top 5; 200 leaves 554 (benchmarks/hnsw_recall.py). The rest are
# graph nodes HNSW cannot reach at any breadth (800 still misses 309): BM25 finds them.
EF_SEARCH = 200
SYNC_THRESHOLD = 1000  # Chroma's default: the vector index is saved every 1,000 records
SEP = "\x1f"  # joins list values (dates, sources) inside one Chroma metadata string
PAGE = 5000
FIRST = {"n": 0}  # Chroma filter for the chunks that carry paper records (chunk #0)


def split_list(value: str | None) -> tuple[str, ...]:
    return tuple(v for v in (value or "").split(SEP) if v)


def _join(values) -> str:
    return SEP.join(values)


# What Chroma says when its vector index and its records disagree: a damaged index
# (two processes wrote it at once), not a permissions problem.
DAMAGED = ("Error finding id", "Error getting embedding", "Error loading hnsw index")


def _damaged(exc: BaseException) -> bool:
    return any(marker in str(exc) for marker in DAMAGED)


def _wrap_chroma(exc: Exception, settings: Settings, doing: str) -> StoreError:
    where = f"the Chroma server at {settings.chroma_url}" if settings.chroma_url else (
        f"the index in {settings.data_dir}")
    if _damaged(exc):
        detail = next(m for m in DAMAGED if m in str(exc))
        return IndexDamagedError(
            f"Cannot {doing} {where}: it is damaged ({detail}: its vectors and records "
            "disagree, e.g. after two processes wrote it at once); run `ask doctor --repair` "
            "to fix it (no paper is lost).")
    hint = ("is it running? Start it with `chroma run --path DIR` or unset ABSTRACTA_CHROMA_URL."
            if settings.chroma_url else "check that the folder is readable and writable, "
            "or set ABSTRACTA_DATA_DIR / --data-dir to another folder.")
    detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    if "disk is full" in detail or "No space left" in detail:
        hint = "the disk is full: free some space and run it again (nothing indexed is lost)."
    return StoreError(f"Cannot {doing} {where} ({detail}); {hint}")


class Store:
    """Chroma collections + lexical index. Build with :func:`open_store`."""

    def __init__(self, settings: Settings, client, chunks):
        self.settings = settings
        self._client = client
        self.chunks = chunks
        self._lexical: Lexical | None = None
        self._lexical_lock = threading.Lock()  # one rebuild at a time (UI threads)
        self.read_only: str = ""  # why writes are refused (a read-only or full-disk index)
        # Embedded only: the short-held lock around Chroma writes and opens (rag/lock.py).
        self._guard = None if settings.chroma_url else ChromaGuard(settings.data_dir)
        self._reopen_lock = threading.RLock()
        self.writing = False  # this process holds the write lock (rag.lock.writing)
        self._seen_generation = self.generation()

    # --- description ------------------------------------------------------------------
    @property
    def location(self) -> str:
        return self.settings.chroma_url or str(self.settings.data_dir / "chroma")

    @property
    def embed_model(self) -> str | None:
        return (self.chunks.metadata or {}).get("embed_model")

    def count_papers(self) -> int:
        return len(self._call(self.chunks.get, "read", where=FIRST, include=[])["ids"])

    def has_papers(self) -> bool:
        """Whether any paper is indexed, without a 0.2 s metadata scan at 100k chunks:
        every completed ingest marks the collection (see ``bump_generation``)."""
        if (self.chunks.metadata or {}).get("indexed"):
            return True
        return bool(self._call(self.chunks.get, "read", where=FIRST, limit=1, include=[])["ids"])

    def count_chunks(self) -> int:
        return self._call(self.chunks.count, "read")

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"Cannot write: {self.read_only}. Make the folder writable (or free "
                             "disk space) and run it again; nothing indexed is lost.")

    def _call(self, fn, doing, *args, **kwargs):
        if doing == "write":
            self._writable()
            if self._guard is not None:
                with self._guard.hold(exclusive=True):
                    return self._once(fn, doing, args, kwargs)
            return self._once(fn, doing, args, kwargs)
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            if not (_damaged(exc) and self._reopenable()):
                raise _wrap_chroma(exc, self.settings, doing) from exc
        # Embedded Chroma keeps the vector index in memory, read once per process: a
        # process that opened the index before another one wrote it finds records whose
        # vectors it has never seen ("Error finding id"). Open it afresh, ask again once.
        self.reopen()
        return self._once(self._rebind(fn), doing, args, kwargs)

    def _once(self, fn, doing, args, kwargs):
        try:
            return fn(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises many types; all mean the same to a user
            raise _wrap_chroma(exc, self.settings, doing) from exc

    def _rebind(self, fn):
        """The same method on the reopened client or collection."""
        owner = getattr(fn, "__self__", None)
        if owner is None:
            return fn
        target = self._client if owner.__class__ is self._client.__class__ else self.chunks
        return getattr(target, fn.__name__, fn)

    # --- other processes' writes (embedded) -------------------------------------------
    def _reopenable(self) -> bool:
        return self._guard is not None and not self.read_only and not self.writing

    def reopen(self) -> None:
        """Open the embedded index afresh: the saved vector index plus the write log, read
        under ``chroma.lock`` so that no writer is saving it meanwhile."""
        if self._guard is None:
            self.chunks = self._once(self._client.get_collection, "read",
                                     (self.chunks.name,), {"embedding_function": None})
            return
        with self._reopen_lock, self._guard.hold(exclusive=False):
            path = self.settings.data_dir / "chroma"
            try:
                client = _persistent_client(path, fresh=True)
                chunks = _chunks_collection(client, self.settings)
                chunks.get(ids=["\x00"], include=[])  # loads the index now, under the lock
            except Exception as exc:
                raise _wrap_chroma(exc, self.settings, "open") from exc
            self._client, self.chunks = client, chunks
            self._seen_generation = self.generation()

    def begin_write(self) -> None:
        """This process now holds the write lock: start from the current index (another
        writer may have written since it was opened), and stop reopening it."""
        with self._reopen_lock:
            self.writing = False
            if self._guard is not None and not self.read_only:
                self.reopen()
            self.writing = True

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
        if self._guard is None or self.read_only:
            return
        with self._reopen_lock, self._guard.hold(exclusive=True):
            hnsw = {"sync_threshold": 1}
            if (self.chunks.configuration or {}).get("hnsw", {}).get("ef_search") != EF_SEARCH:
                hnsw["ef_search"] = EF_SEARCH
            self._once(self.chunks.modify, "write", (), {"configuration": {"hnsw": hnsw}})
            try:
                self.reopen()
            finally:
                self._once(self.chunks.modify, "write", (),
                           {"configuration": {"hnsw": {"sync_threshold": SYNC_THRESHOLD}}})

    def end_write(self) -> None:
        with self._reopen_lock:
            self.writing = False
            self._seen_generation = self.generation()

    def refresh(self) -> None:
        """Catch up with other processes' writes: a new generation means a writer started
        or finished, so an embedded index is opened afresh (cheap otherwise)."""
        self.chunks = self._call(self._client.get_collection, "read", self.chunks.name,
                                 embedding_function=None)
        if self._reopenable() and self.generation() != self._seen_generation:
            with self._reopen_lock:
                if self._reopenable():
                    self.reopen()

    # --- embedding model bookkeeping --------------------------------------------------
    def check_model(self, name: str, dim: int, *, claim: bool = False) -> None:
        """Refuse to mix embedding models; with ``claim``, record ours on an empty index."""
        meta = dict(self.chunks.metadata or {})
        recorded = meta.get("embed_model")
        if recorded and recorded != name:
            raise EmbeddingMismatchError(
                f"The index at {self.location} was built with embedding model '{recorded}', "
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
            self._call(self.chunks.modify, "write", metadata=meta)

    def generation(self) -> str:
        return (self.chunks.metadata or {}).get("generation", "")

    def bump_generation(self, indexed: bool = False) -> None:
        """Mark the chunk set as changed (lexical caches everywhere become stale);
        ``indexed``: a write has completed, so the index holds papers."""
        fresh = self._call(self._client.get_collection, "read", self.chunks.name,
                           embedding_function=None)
        meta = dict(fresh.metadata or {})
        meta["generation"] = uuid.uuid4().hex
        if indexed:
            meta["indexed"] = True
        self._call(fresh.modify, "write", metadata=meta)
        self.chunks = fresh
        self._seen_generation = meta["generation"]

    # --- papers -----------------------------------------------------------------------
    def get_papers(self, ids: list[str]) -> dict[str, StoredPaper]:
        """Paper records by id (missing ids are left out)."""
        if not ids:
            return {}
        return {pid: _paper(pid, meta) for pid, meta in self.paper_meta(list(ids)).items()}

    def chunk_vectors(self, paper_ids: list[str], guess: int = 32) -> dict[str, np.ndarray]:
        """The chunk vectors of each paper (rows of one array per paper id).

        Chunk ids are ``<paper id>#<n>``, so the first ``guess`` of each paper are read
        by id (1 ms at 100k chunks, against 17 ms for a ``where`` on paper_id); only a
        paper that fills all of them is read again by ``where``.
        """
        def by_paper(**query) -> dict[str, list]:
            res = self._call(self.chunks.get, "read", include=["embeddings", "metadatas"], **query)
            rows: dict[str, list] = {}
            for meta, vec in zip(res["metadatas"], res["embeddings"], strict=False):
                rows.setdefault(meta["paper_id"], []).append(vec)
            return rows

        rows = by_paper(ids=[f"{pid}#{i}" for pid in paper_ids for i in range(guess)])
        more = [pid for pid, vecs in rows.items() if len(vecs) >= guess]
        if more:
            rows.update(by_paper(where={"paper_id": {"$in": more}}))
        return {pid: np.asarray(vecs, dtype=np.float32) for pid, vecs in rows.items()}

    def paper_meta(self, ids: list[str]) -> dict[str, dict]:
        """Raw metadata of the paper records (chunk #0) of these papers, by paper id."""
        return {pid: m for pid, m in self._first_chunks(ids).items() if "hash" in m}

    def _first_chunks(self, ids: list[str]) -> dict[str, dict]:
        """Metadata of chunk #0 of these papers, by paper id, paper record or not."""
        out: dict[str, dict] = {}
        for start in range(0, len(ids), PAGE):
            res = self._call(self.chunks.get, "read",
                             ids=[f"{pid}#0" for pid in ids[start:start + PAGE]],
                             include=["metadatas"])
            out.update((m["paper_id"], m) for m in res["metadatas"])
        return out

    def ids_by_title_key(self, keys: list[str]) -> dict[str, list[str]]:
        """title key -> the ids of the indexed papers with that title (several papers
        may share one: "Summary", "Erratum"), sorted."""
        out: dict[str, set[str]] = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            res = self._call(self.chunks.get, "read", where={"title_key": {"$in": part}},
                             include=["metadatas"])
            for m in res["metadatas"]:
                out.setdefault(m["title_key"], set()).add(m["paper_id"])
        return {key: sorted(ids) for key, ids in out.items()}

    def iter_papers(self):
        """Every paper record (paged), for the library view and filters."""
        offset = 0
        while True:
            res = self._call(self.chunks.get, "read", where=FIRST, limit=PAGE, offset=offset,
                             include=["metadatas"])
            for meta in res["metadatas"]:
                if "hash" in meta:
                    yield _paper(meta["paper_id"], meta)
            if len(res["ids"]) < PAGE:
                return
            offset += PAGE

    # --- writes -----------------------------------------------------------------------
    def replace_chunks(self, paper_ids: list[str], ids, embeddings, metadatas,
                       delete_old: bool = True) -> None:
        """Drop the old chunks of these papers, then add the new ones, paper records last.

        Texts travel in the metadata (``text``), not as Chroma documents: Chroma builds
        a full-text index over documents, which we never query (BM25 is ours), and
        which doubles the cost of every write (measured: 4,000 chunks in 2.44 s as
        documents, 1.19 s as metadata).
        """
        if delete_old:
            for start in range(0, len(paper_ids), 1000):
                self._call(self.chunks.delete, "write",
                           where={"paper_id": {"$in": paper_ids[start:start + 1000]}})
        # Chunk #0 holds the paper record, the commit marker: write it after the rest.
        order = sorted(range(len(ids)), key=lambda i: metadatas[i]["n"] == 0)
        ids = [ids[i] for i in order]
        embeddings = np.asarray(embeddings)[order]
        metadatas = [metadatas[i] for i in order]
        for start in range(0, len(ids), PAGE):
            end = start + PAGE
            self._call(self.chunks.upsert, "write", ids=ids[start:end],
                       embeddings=embeddings[start:end], metadatas=metadatas[start:end])

    def update_paper_meta(self, ids: list[str], metadatas: list[dict]) -> None:
        """New listings for unchanged papers: update their chunks and paper records."""
        by_paper = dict(zip(ids, metadatas, strict=False))
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            res = self._call(self.chunks.get, "read", where={"paper_id": {"$in": part}},
                             include=["metadatas"])
            if res["ids"]:
                metas = [chunk_metadata(m["paper_id"], m.get("n", 0), by_paper[m["paper_id"]],
                                        m.get("text", "")) for m in res["metadatas"]]
                self._call(self.chunks.update, "write", ids=res["ids"], metadatas=metas)

    def reset(self) -> None:
        """Delete the collection and the lexical cache (``ask ingest --rebuild``)."""
        self._writable()
        with self._guard.hold(exclusive=True) if self._guard else contextlib.nullcontext():
            with contextlib.suppress(Exception):  # already gone
                self._client.delete_collection(self.chunks.name)
            shutil.rmtree(self._lexical_dir(), ignore_errors=True)
            self._lexical = None
            self.chunks = _chunks_collection(self._client, self.settings)

    # --- dense search -----------------------------------------------------------------
    def dense(self, vector: np.ndarray, n: int, paper_ids: list[str] | None = None):
        """(chunk ids, paper ids, documents, cosine similarities), best first."""
        # No count() first: it costs a scan per query at 100k chunks, and Chroma simply
        # returns fewer rows (none on an empty collection) when asked for more.
        self.refresh()
        where = {"paper_id": {"$in": paper_ids}} if paper_ids is not None else None
        res = self._call(self.chunks.query, "search", query_embeddings=[vector.tolist()],
                         n_results=n, where=where,
                         include=["metadatas", "distances"])
        metas = res["metadatas"][0]
        sims = [1.0 - d for d in res["distances"][0]]  # cosine distance -> similarity
        return res["ids"][0], [m["paper_id"] for m in metas], [m["text"] for m in metas], sims

    # --- lexical index ----------------------------------------------------------------
    def _lexical_dir(self) -> Path:
        origin = self.settings.chroma_url or str(self.settings.data_dir.resolve())
        tag = hashlib.sha1(f"{origin}|{self.settings.collection}".encode()).hexdigest()[:12]
        return self.settings.data_dir / "lexical" / tag

    def lexical(self) -> Lexical | None:
        """The BM25 index for the current generation (load the cache, or rebuild it)."""
        with self._lexical_lock:
            # Other processes (another `ask`, other machines on a shared server) may have
            # written since we last looked: read the current generation every time.
            self.refresh()
            return self._current_lexical()

    def _current_lexical(self) -> Lexical | None:
        gen = self.generation()
        if self._lexical is None or self._lexical.generation != gen:
            folder = self._lexical_dir()
            self._lexical = lexical.load(folder, gen) or self._build_lexical(folder, gen)
        return self._lexical

    def _build_lexical(self, folder: Path, gen: str) -> Lexical | None:
        builder = lexical.Builder(workdir=folder.parent)  # its segments spill next to the cache
        # Pages of 1,000: a 5,000-row get holds ~150 MB in Chroma at once (measured with
        # 400-token chunks), and is no faster.
        offset, page = 0, 1000
        while True:
            res = self._call(self.chunks.get, "read", limit=page, offset=offset,
                             include=["metadatas"])
            metas = res["metadatas"]
            builder.add(res["ids"], [m["paper_id"] for m in metas], [m["text"] for m in metas])
            if len(res["ids"]) < page:
                break
            offset += page
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}-{threading.get_ident()}")
        shutil.rmtree(tmp, ignore_errors=True)
        # Written straight into tmp; in memory when it cannot be (the cache is an
        # optimisation: a read-only data dir still answers).
        lex = builder.build(gen, tmp)
        try:
            if lex is not None and tmp.exists():
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(tmp, folder)  # the arrays stay mapped across the rename
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        return lex


def _paper(pid: str, meta: dict) -> StoredPaper:
    title = meta.get("title", "")
    abstract = meta["abstract"] if "abstract" in meta else meta.get("text", "")[len(title) + 1:]
    return StoredPaper(
        paper_id=pid, title=title, abstract=abstract,
        dates=split_list(meta.get("dates")), sources=split_list(meta.get("sources")),
        authors=meta.get("authors", ""), url=meta.get("url", ""),
    )


def _chunks_collection(client, settings: Settings):
    return client.get_or_create_collection(
        f"{settings.collection}_chunks", embedding_function=None,
        configuration={"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}},
        metadata={"kind": "chunks"})


def _finish_repair(settings: Settings, client) -> None:
    """`ask doctor --repair` copies the chunks into ``<name>_chunks_repair`` and swaps it in;
    stopped during the swap, the complete copy is put in place here (never lost)."""
    name = f"{settings.collection}_chunks"
    try:
        copy = client.get_collection(f"{name}_repair", embedding_function=None)
    except Exception:  # the usual case: no repair under way
        return
    meta = dict(copy.metadata or {})
    if not meta.pop("repair_complete", False):
        client.delete_collection(copy.name)  # a repair stopped part-way: the original stands
        return
    with contextlib.suppress(Exception):  # already gone
        client.delete_collection(name)
    copy.modify(name=name, metadata=meta)


def _open(settings: Settings, client) -> Store:
    _finish_repair(settings, client)
    return Store(settings, client, _chunks_collection(client, settings))


def _chroma_settings():
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _persistent_client(path: Path, fresh: bool = False):
    """An embedded client; ``fresh`` skips the system chromadb caches per path (which
    holds the vector index as this process first read it)."""
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient

    if fresh:
        cache = SharedSystemClient._identifier_to_system
        for key in [k for k in cache if os.path.realpath(k) == os.path.realpath(path)]:
            # Not stopped: another thread may still be reading through it; it goes when
            # the last reference does.
            del cache[key]
            SharedSystemClient._identifier_to_refcount.pop(key, None)
    return chromadb.PersistentClient(path=str(path), settings=_chroma_settings())


def open_store(settings: Settings) -> Store:
    """Open (creating if needed) the index the settings point at."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    try:
        import chromadb
    except ImportError as exc:  # pragma: no cover
        raise StoreError("chromadb is not installed; reinstall Abstracta.") from exc
    try:
        if settings.chroma_url:
            url = urlparse(settings.chroma_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise StoreError(
                    f"ABSTRACTA_CHROMA_URL={settings.chroma_url!r} is not an http(s) URL; "
                    "use e.g. http://127.0.0.1:8000."
                )
            _check_is_chroma(settings.chroma_url)
            client = chromadb.HttpClient(
                host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https", settings=_chroma_settings(),
            )
            client.heartbeat()
        else:
            path = settings.data_dir / "chroma"
            try:
                path.mkdir(parents=True, exist_ok=True)
                # Shared chroma.lock: no writer saves the vector index while we load it.
                with ChromaGuard(settings.data_dir).hold(exclusive=False):
                    store = _open(settings, _persistent_client(path))
                    store.chunks.get(ids=["\x00"], include=[])
                return store
            except Exception as exc:
                snapshot = _read_only_snapshot(path, exc)
                if snapshot is None:
                    raise
                client = chromadb.PersistentClient(path=str(snapshot),
                                                   settings=_chroma_settings())
                store = _open(settings, client)
                store.read_only = (
                    f"the index in {settings.data_dir} cannot be written ({_why(exc)}); "
                    "answering from a temporary copy")
                return store
        return _open(settings, client)
    except StoreError:
        raise
    except Exception as exc:
        raise _wrap_chroma(exc, settings, "open") from exc


def _check_is_chroma(base: str) -> None:
    """A URL that answers but not as Chroma would fail deep in the client ("Could not
    connect to tenant", a JSON error): ask its heartbeat first and say what is wrong."""
    import json
    import urllib.error
    import urllib.request

    url = base.rstrip("/") + "/api/v2/heartbeat"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read(4096)
    except urllib.error.HTTPError as exc:
        raise StoreError(f"ABSTRACTA_CHROMA_URL={base} answers, but is not a Chroma server "
                         f"(GET /api/v2/heartbeat: HTTP {exc.code}); point it at a "
                         "`chroma run` server.") from exc
    except (OSError, ValueError):
        return  # not answering at all: the client's own error names the URL
    try:
        ok = "nanosecond heartbeat" in json.loads(body)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise StoreError(f"ABSTRACTA_CHROMA_URL={base} answers, but is not a Chroma server "
                         "(its /api/v2/heartbeat is not Chroma's); point it at a `chroma run` "
                         "server.")


_CANNOT_WRITE = ("readonly database", "read-only file system", "disk is full", "No space left")


def _why(exc: Exception) -> str:
    text = str(exc)
    return "the disk is full" if ("disk is full" in text or "No space" in text) else "read-only"


def _read_only_snapshot(path: Path, exc: Exception) -> Path | None:
    """A private copy of an index that Chroma cannot open in place, or None.

    Embedded Chroma writes to its SQLite file even to open an index, so an index on a
    read-only share or a full disk could not be read at all. Answering from a copy in
    the temp folder keeps it readable; writes are refused (``Store.read_only``).
    """
    import atexit
    import tempfile

    if not any(marker in str(exc) for marker in _CANNOT_WRITE):
        return None
    if not (path / "chroma.sqlite3").is_file():
        return None
    try:
        tmp = Path(tempfile.mkdtemp(prefix="abstracta-readonly-"))
        atexit.register(shutil.rmtree, tmp, True)
        shutil.copytree(path, tmp / "chroma", copy_function=shutil.copyfile)
        for folder, _, files in os.walk(tmp):  # the copy must be writable, unlike the original
            os.chmod(folder, 0o700)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o600)
    except OSError:
        return None
    return tmp / "chroma"


def metadata_for_paper(paper: StoredPaper, content_hash: str, title_key: str) -> dict:
    return {
        "title": paper.title, "dates": _join(paper.dates), "sources": _join(paper.sources),
        "abstract": paper.abstract, "authors": paper.authors[:2000], "url": paper.url,
        "hash": content_hash,
        "title_key": title_key,
    }


def chunk_metadata(paper_id: str, n: int, paper_meta: dict, text: str) -> dict:
    """What every chunk knows: its text, its paper's id, title, dates and sources.

    Chunk #0 also carries the paper record (``paper_meta``); its abstract is left out
    when the chunk text is exactly title + abstract, the common case of a one-chunk
    abstract (it would be the same kilobyte twice).
    """
    meta = {"paper_id": paper_id, "n": n, "text": text, "title": paper_meta["title"],
            "dates": paper_meta["dates"], "sources": paper_meta["sources"]}
    if n == 0:
        meta.update(paper_meta)
        if text == f"{paper_meta['title']}\n{paper_meta['abstract']}":
            del meta["abstract"]
    return meta
