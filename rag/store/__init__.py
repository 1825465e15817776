"""The index: one Chroma collection and a lexical (BM25) index kept in step.

- ``<name>_chunks``: one record per chunk (vector, text, ``paper_id``, title, dates,
  sources). Chunk ``<paper id>#0`` also carries the paper record: authors, link,
  title key and the content hash ingest compares against (and the abstract, unless
  the chunk text is exactly title + abstract). It is written *after* the paper's
  other chunks, so it doubles as a commit marker: a paper whose chunk #0 is missing
  or stale is simply ingested again. (A second collection of paper records would cost
  as much to write as the chunks.)
- The lexical index (:mod:`rag.lexical`) is BM25 over the chunk texts, cached on local
  disk per generation of the collection, with the facets (dates, sources) that date and
  source filters turn into a Chroma ``where``.

The parts, one job each: :mod:`rag.store.schema` (the metadata layout, typed records),
:mod:`rag.store.chroma` (client, collection, errors, reopening after other processes'
writes), :mod:`rag.store.papers` (reads and writes of papers and chunks),
:mod:`rag.store.cache` (BM25 and facets per generation), :mod:`rag.store.open`
(opening, the read-only copy), :mod:`rag.store.repair` (the copy a repair swaps in, and
finishing a swap that was stopped), and :class:`rag.store.store.Store`, the facade
everything else calls (the collection paired with its generation's cache).
"""

from __future__ import annotations

from rag.store.chroma import EF_SEARCH
from rag.store.open import open_store
from rag.store.schema import (
    PAGE,
    ChunkRecord,
    chunk_metadata,
    metadata_for_paper,
    split_list,
)
from rag.store.store import Store

__all__ = ["EF_SEARCH", "PAGE", "ChunkRecord", "Store", "chunk_metadata", "metadata_for_paper",
           "open_store", "snapshot", "split_list"]


def snapshot(store: Store) -> dict[str, ChunkRecord]:
    """The index's content as plain records, by chunk id (for comparing two indexes)."""
    return {r.chunk_id: r for page in store.scan() for r in page}
