"""The :class:`Store` facade: what ingest, retrieval and the doctor call (the parts are
described in :mod:`rag.store`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import numpy as np

from rag.lexical import Lexical
from rag.settings import Settings
from rag.store import papers, repair
from rag.store.cache import Cached, Facets, GenerationCache
from rag.store.chroma import ChromaIndex
from rag.store.prepared import Prepared
from rag.store.schema import FIRST

# The collection metadata key that records the bundled corpus's ingest: set to STARTED
# before its first paper is written and to COMPLETE after its last, so a first run stopped
# part-way is resumed (rag.ingest.bundled) and reported by `ask doctor`.
BUNDLED_KEY = "bundled_corpus"
BUNDLED_STARTED, BUNDLED_COMPLETE = "started", "complete"

Keep = Callable[[tuple[str, ...]], bool]  # a filter on a paper's dates or sources

P = ParamSpec("P")
R = TypeVar("R")


def _on_index(fn: Callable[Concatenate[ChromaIndex, P], R]) -> Callable[Concatenate[Store, P], R]:
    """A function of the index (``papers.*``, a ``ChromaIndex`` method) as a Store method.

    Most of what the store does is one such function over its one index: binding them in
    a table keeps their documentation in one place (the function's) instead of a
    hand-written forward per function that repeats it.
    """
    @functools.wraps(fn)
    def method(store: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(store.index, *args, **kwargs)

    return method


class Store:
    """One Chroma collection + the lexical index kept in step. Build with ``open_store``.

    Its own job: the pairing of the collection (:class:`rag.store.chroma.ChromaIndex`)
    with the BM25 index and facets of its current generation
    (:class:`rag.store.cache.GenerationCache`); reads and writes of papers and chunks are
    :mod:`rag.store.papers`' functions, bound to the collection below.
    """

    def __init__(self, settings: Settings, client, collection):
        self.settings = settings
        self.index = ChromaIndex(settings, client, collection)
        self.cache = GenerationCache(settings)

    # --- description ------------------------------------------------------------------
    @property
    def location(self) -> str:
        return self.settings.chroma_url or str(self.settings.data_dir / "chroma")

    @property
    def embed_model(self) -> str | None:
        return self.index.metadata().get("embed_model")

    @property
    def read_only(self) -> str:
        """Why writes are refused ("" when they are not): a read-only or full-disk index."""
        return self.index.read_only

    @property
    def writing(self) -> bool:
        """This process holds the write lock (rag.lock.writing)."""
        return self.index.writing

    def count_papers(self) -> int:
        self.refresh()  # another process's swap (a rebuild) or write: count the index as it is
        return len(self.index.read("get", where=FIRST, include=[])["ids"])

    def has_papers(self) -> bool:
        """Whether any paper is indexed, without a 0.2 s metadata scan at 100k chunks:
        every completed ingest marks the collection (see ``bump_generation``)."""
        if self.index.metadata().get("indexed"):
            return True
        return bool(self.index.read("get", where=FIRST, limit=1, include=[])["ids"])

    def count_chunks(self) -> int:
        self.refresh()
        return self.index.read("count")

    @property
    def bundled(self) -> str:
        """How far the bundled sample corpus got into this index: "" (never ingested),
        :data:`BUNDLED_STARTED` (an ingest of it began and has not finished) or
        :data:`BUNDLED_COMPLETE`."""
        return str(self.index.metadata().get(BUNDLED_KEY, ""))

    def mark_bundled(self, state: str) -> None:
        """Record how far the bundled corpus got (see :attr:`bundled`)."""
        self.index.set_key(BUNDLED_KEY, state)

    # --- other processes, writes (the collection's own) ---------------------------------
    generation = _on_index(ChromaIndex.generation)
    refresh = _on_index(ChromaIndex.refresh)

    def begin_write(self) -> None:
        """This process now holds the write lock (:meth:`ChromaIndex.begin_write`); what an
        earlier swap retired or a stopped rebuild left is deleted now."""
        self.index.begin_write()
        if not self.read_only:
            repair.drop_leftovers(self.index)

    end_write = _on_index(ChromaIndex.end_write)
    flush = _on_index(ChromaIndex.flush)
    bump_generation = _on_index(ChromaIndex.bump_generation)
    start_batch = _on_index(ChromaIndex.start_batch)

    def start_recorded_batch(self, empty: bool) -> None:
        """:meth:`start_batch`, recording what the batch writes as a lexical segment
        (:mod:`rag.store.prepared`) when this process holds the embedded write lock (no
        other writer can come between): the cache then takes that segment instead of
        reading the chunks back. Elsewhere (a Chroma server), a plain batch. ``empty``:
        the collection holds no chunk now (the caller has just counted them)."""
        index = self.index
        if index.guard is not None and index.writing and not index.read_only:
            index.prepared = Prepared(index.generation(), empty, self.cache.folder.parent)
        self.start_batch()

    def drop_recorded(self) -> None:
        """Forget a recorded batch (a stopped ingest)."""
        prepared, self.index.prepared = self.index.prepared, None
        if prepared is not None:
            prepared.close()

    def check_model(self, name: str, dim: int, *, claim: bool = False) -> None:
        """Refuse to mix embedding models; with ``claim``, record ours on an empty index."""
        self.index.check_model(name, dim, self.location, claim)

    @contextlib.contextmanager
    def rebuilding(self) -> Iterator[None]:
        """``ask ingest --rebuild``: inside the block this store writes a new, empty
        collection (and its BM25 cache) beside the live one, which readers go on reading.
        Ended without an error, the new one is swapped in whole and readers pick it up at
        their next question; ended by an error or Ctrl-C (or killed), the live one stands
        as it was (:mod:`rag.store.repair`)."""
        index, live, live_cache = self.index, self.index.collection, self.cache
        index.collection = repair.new_copy(index, repair.REBUILD_SUFFIX)
        self.cache = GenerationCache(self.settings, staged=True)
        self.cache.clear()
        try:
            yield
            self.snapshot()  # its BM25 cache, ready before the swap (an empty rebuild too)
        except BaseException:
            index.collection, self.cache = live, live_cache
            with contextlib.suppress(Exception):  # else the next writer drops it
                repair.drop_copy(index, repair.REBUILD_SUFFIX)
            raise
        repair.swap_in(index, index.collection)
        self.cache.promote(live_cache)
        index.seen_generation = index.generation()

    replace_chunks = _on_index(papers.replace_chunks)

    def update_paper_meta(self, ids: list[str], metadatas: list[dict]) -> None:
        """New listings for unchanged papers: update their chunks and paper records."""
        # Written in a batch (the ingest's, or one of its own), so the lexical cache
        # catches up with them: its facets are counted from the chunks it holds.
        own = self.index.batch is None
        if own:
            self.index.start_batch()
        papers.update_paper_meta(self.index, ids, metadatas)
        if own:
            self.index.bump_generation(indexed=True)

    # --- papers and chunks (rag.store.papers) ---------------------------------------------
    get_papers = _on_index(papers.get_papers)
    paper_records = _on_index(papers.paper_records)
    incomplete = _on_index(papers.incomplete)
    ids_by_title_key = _on_index(papers.ids_by_title_key)
    iter_papers = _on_index(papers.iter_papers)
    scan = _on_index(papers.scan)
    chunk_vectors = _on_index(papers.chunk_vectors)
    vectors = _on_index(papers.vectors)

    # --- search ---------------------------------------------------------------------------
    def dense(self, vector: np.ndarray, n: int, paper_ids: list[str] | None = None):
        """(paper id of each chunk, cosine similarity), best first, ``n`` chunks."""
        # No count() first: it costs a scan per query at 100k chunks, and Chroma simply
        # returns fewer rows (none on an empty collection) when asked for more.
        self.refresh()
        return papers.dense(self.index, vector, n, paper_ids)

    def snapshot(self) -> Cached:
        """The BM25 index and facets of the current generation (loaded from the cache, or
        rebuilt). A caller that holds one for a whole question sees one generation."""
        return self.cache.current(self.index)

    def lexical(self) -> Lexical | None:
        """The BM25 index for the current generation (load the cache, or rebuild it)."""
        return self.snapshot().lexical

    def optimize_lexical(self) -> bool:
        """Merge the BM25 cache's segments into one (``ask doctor --optimize``); False
        when there was nothing to merge (or no cache on disk)."""
        return self.cache.optimize(self.index)

    @property
    def lexical_folder(self) -> Path:
        """Where the BM25 cache of this index is kept on this machine."""
        return self.cache.folder

    def filter_papers(self, dates: Keep | None = None, sources: Keep | None = None,
                      facets: Facets | None = None) -> list[str]:
        """Ids of the papers whose dates and sources the predicates keep (None: any),
        selected by Chroma (see :func:`rag.store.papers.filter_papers`). ``facets``: those
        of a :meth:`snapshot` the caller holds (None: the current generation's)."""
        if facets is None:
            facets = self.snapshot().facets
        return papers.filter_papers(self.index, facets, dates, sources)

    # --- checks and repair (rag.doctor) -----------------------------------------------------
    unreadable = _on_index(papers.unreadable)
    repair_copy = _on_index(repair.repair_copy)
