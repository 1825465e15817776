"""The :class:`Store` facade: what ingest, retrieval and the doctor call (the parts are
described in :mod:`rag.store`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from rag.lexical import Lexical
from rag.settings import Settings
from rag.store import papers
from rag.store.cache import GenerationCache
from rag.store.chroma import ChromaIndex
from rag.store.schema import FIRST, ChunkRecord
from rag.types import StoredPaper

Keep = Callable[[tuple[str, ...]], bool]  # a filter on a paper's dates or sources


class Store:
    """One Chroma collection + the lexical index kept in step. Build with ``open_store``."""

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
        return len(self.index.read("get", where=FIRST, include=[])["ids"])

    def has_papers(self) -> bool:
        """Whether any paper is indexed, without a 0.2 s metadata scan at 100k chunks:
        every completed ingest marks the collection (see ``bump_generation``)."""
        if self.index.metadata().get("indexed"):
            return True
        return bool(self.index.read("get", where=FIRST, limit=1, include=[])["ids"])

    def count_chunks(self) -> int:
        return self.index.read("count")

    def generation(self) -> str:
        return self.index.generation()

    # --- other processes, writes --------------------------------------------------------
    def refresh(self) -> None:
        self.index.refresh()

    def begin_write(self) -> None:
        self.index.begin_write()

    def end_write(self) -> None:
        self.index.end_write()

    def flush(self) -> None:
        self.index.flush()

    def bump_generation(self, indexed: bool = False) -> None:
        self.index.bump_generation(indexed)

    def check_model(self, name: str, dim: int, *, claim: bool = False) -> None:
        """Refuse to mix embedding models; with ``claim``, record ours on an empty index."""
        self.index.check_model(name, dim, self.location, claim)

    def reset(self) -> None:
        """Delete the collection and the lexical cache (``ask ingest --rebuild``)."""
        self.index.writable()
        with self.index.exclusive():
            self.cache.clear()
            self.index.reset()

    def replace_chunks(self, paper_ids: list[str], ids, embeddings, metadatas,
                       delete_old: bool = True) -> None:
        """Drop the old chunks of these papers, then add the new ones, paper records last
        (see :func:`rag.store.papers.replace_chunks`)."""
        papers.replace_chunks(self.index, paper_ids, ids, embeddings, metadatas, delete_old)

    def update_paper_meta(self, ids: list[str], metadatas: list[dict]) -> None:
        """New listings for unchanged papers: update their chunks and paper records."""
        papers.update_paper_meta(self.index, ids, metadatas)
        self.index.renew("listings")  # the facets change, the texts (BM25) do not

    def delete_chunks(self, chunk_ids: list[str]) -> None:
        self.index.write("delete", ids=chunk_ids)

    # --- papers and chunks --------------------------------------------------------------
    def get_papers(self, ids: list[str]) -> dict[str, StoredPaper]:
        """Paper records by id (missing ids are left out)."""
        return papers.get_papers(self.index, ids) if ids else {}

    def paper_records(self, ids: list[str]) -> dict[str, ChunkRecord]:
        """The paper records (chunk #0) with their content hashes, by paper id."""
        return papers.paper_records(self.index, list(ids))

    def ids_by_title_key(self, keys: list[str]) -> dict[str, list[str]]:
        """title key -> the ids of the indexed papers with that title (several papers
        may share one: "Summary", "Erratum"), sorted."""
        return papers.ids_by_title_key(self.index, keys)

    def iter_papers(self) -> Iterator[StoredPaper]:
        """Every paper record (paged), for the library view."""
        return papers.iter_papers(self.index)

    def scan(self) -> Iterator[list[ChunkRecord]]:
        """Every chunk as a typed record, a page at a time."""
        return papers.scan(self.index)

    def chunks_of(self, paper_id: str) -> list[ChunkRecord]:
        """The chunks of one paper, in order."""
        return papers.chunks_of(self.index, paper_id)

    def chunk_vectors(self, paper_ids: list[str],
                      guess: int | dict[str, int] = 32) -> dict[str, np.ndarray]:
        """The chunk vectors of each paper (rows of one array per paper id).

        Chunk ids are ``<paper id>#<n>``, so the first ``guess`` of each paper (one number,
        or one per paper id) are read by id (1 ms at 100k chunks, against 17 ms for a
        ``where`` on paper_id); only a paper that fills all of them is read again by
        ``where``.
        """
        return papers.chunk_vectors(self.index, paper_ids, guess)

    def vectors(self, chunk_ids: list[str]) -> dict[str, np.ndarray]:
        """The vectors of these chunks, by chunk id (missing ones left out)."""
        return papers.vectors(self.index, chunk_ids)

    # --- search ---------------------------------------------------------------------------
    def dense(self, vector: np.ndarray, n: int, paper_ids: list[str] | None = None):
        """(paper id of each chunk, cosine similarity), best first, ``n`` chunks."""
        # No count() first: it costs a scan per query at 100k chunks, and Chroma simply
        # returns fewer rows (none on an empty collection) when asked for more.
        self.refresh()
        return papers.dense(self.index, vector, n, paper_ids)

    def lexical(self) -> Lexical | None:
        """The BM25 index for the current generation (load the cache, or rebuild it)."""
        return self.cache.current(self.index).lexical

    @property
    def lexical_folder(self) -> Path:
        """Where the BM25 cache of this index is kept on this machine."""
        return self.cache.folder

    def sources(self) -> dict[str, int]:
        """Every source (file name) of the indexed papers -> how many papers it lists."""
        return self.cache.current(self.index).facets.source_counts()

    def dates(self) -> list[str]:
        """Every listing date of the indexed papers, sorted."""
        return self.cache.current(self.index).facets.all_dates()

    def filter_papers(self, dates: Keep | None = None, sources: Keep | None = None) -> list[str]:
        """Ids of the papers whose dates and sources the predicates keep (None: any),
        selected by Chroma (see :func:`rag.store.papers.filter_papers`)."""
        facets = self.cache.current(self.index).facets
        return papers.filter_papers(self.index, facets, dates, sources)

    # --- checks and repair (rag.doctor) -----------------------------------------------------
    def unreadable(self, chunk_ids: list[str]) -> list[str]:
        """The chunks among these whose vectors Chroma cannot return (a damaged index)."""
        return papers.unreadable(self.index, chunk_ids)

    def nearest(self, vectors: list, n: int = 10) -> list[list[str]]:
        """The ``n`` nearest chunk ids of each vector ([] for one a damaged index fails)."""
        return papers.nearest(self.index, vectors, n)

    def repair_copy(self):
        """A context manager: a new collection to fill, swapped in when the block ends."""
        from rag.store.repair import repair_copy

        return repair_copy(self.index)
