"""New collections built beside the live one and swapped in whole: ``ask doctor --repair``
(:mod:`rag.doctor`) and ``ask ingest --rebuild`` (:mod:`rag.ingest.run`).

A damaged vector index cannot be patched in place: Chroma fails to apply a delete or an
upsert of a record its graph has lost, and then cannot open the index at all. And a
rebuild done in place (delete, then fill) leaves every reader failing ("Nothing found on
disk", "Collection ... does not exist") until it ends. So both fill a copy,
``<name>_chunks_repair`` or ``<name>_chunks_rebuild``, while readers go on reading the
live collection, mark the copy complete and swap it in (:func:`swap_in`).

The swap does not delete the live collection: it renames it ``<name>_chunks_retired``,
so a question that was already reading it finishes; the retired one is deleted by the
next writer (:func:`drop_leftovers`, under the write lock). Killed during the swap, the
next open finishes it (:func:`finish_swaps`); killed before, the live collection was never
touched and the unfinished copy is dropped by the next writer. Both halves live here, so
that opening (:mod:`rag.store.open`) and the facade (:mod:`rag.store.store`) import this
module and it imports neither.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

import numpy as np

from rag.settings import Settings
from rag.store.chroma import ChromaIndex, chunks_name, create_chunks, mark_changed
from rag.store.schema import ChunkRecord, chunk_metadata
from rag.types import Chunk

REPAIR_SUFFIX = "_repair"  # the collection a repair fills before it is swapped in
REBUILD_SUFFIX = "_rebuild"  # the collection `ask ingest --rebuild` fills
RETIRED_SUFFIX = "_retired"  # the collection a swap replaced (dropped by the next writer)
COPIES = (REPAIR_SUFFIX, REBUILD_SUFFIX)
COMPLETE = ("swap_complete", "repair_complete")  # the mark of a copy ready to swap in


class RepairCopy:
    """A new chunks collection beside the old one; :func:`repair_copy` makes and swaps it."""

    def __init__(self, index: ChromaIndex, collection):
        self.index, self.collection = index, collection
        self.copied = 0

    def copy(self, chunk_ids: list[str]) -> None:
        """Copy these chunks, vectors and metadata as they are, from the old collection."""
        if not chunk_ids:
            return
        old = self.index.collection.get(ids=chunk_ids, include=["embeddings", "metadatas"])
        with self.index.exclusive():
            self.collection.upsert(ids=old["ids"], embeddings=old["embeddings"],
                                   metadatas=old["metadatas"])
        self.copied += len(old["ids"])

    def add(self, chunks: list[Chunk], vectors: np.ndarray,
            records: dict[str, ChunkRecord]) -> None:
        """Write re-made chunks; ``records``: their papers' records, by paper id."""
        with self.index.exclusive():
            self._upsert(chunks, vectors, records)

    def _upsert(self, chunks: list[Chunk], vectors: np.ndarray,
                records: dict[str, ChunkRecord]) -> None:
        counts = Counter(c.paper_id for c in chunks)
        self.collection.upsert(
            ids=[c.chunk_id for c in chunks], embeddings=np.asarray(vectors),
            metadatas=[chunk_metadata(c.paper_id, c.index, records[c.paper_id].paper_metadata(),
                                      c.text, counts[c.paper_id]) for c in chunks])


def _drop(client, name: str) -> None:
    with contextlib.suppress(Exception):  # already gone
        client.delete_collection(name)


def drop_copy(index: ChromaIndex, suffix: str) -> None:
    """Delete the ``<live name><suffix>`` copy (a rebuild that ended in an error)."""
    with index.exclusive():
        _drop(index.client, f"{chunks_name(index.settings)}{suffix}")


def new_copy(index: ChromaIndex, suffix: str, metadata: dict | None = None):
    """An empty ``<live name><suffix>`` collection (a leftover one is dropped first)."""
    index.writable()
    name = f"{chunks_name(index.settings)}{suffix}"
    with index.exclusive():
        _drop(index.client, name)
        return create_chunks(index.client, name, metadata, existing=False)


def swap_in(index: ChromaIndex, copy) -> None:
    """Put the complete ``copy`` in place of the live collection (kept as retired, see the
    module docstring) and point ``index`` at it; readers of the old one pick the new one
    up at their next refresh (:meth:`ChromaIndex.refresh`)."""
    client, name = index.client, chunks_name(index.settings)
    meta = {k: v for k, v in (copy.metadata or {}).items() if k not in COMPLETE}
    with index.exclusive():
        # Killed after this line, the next open finds the complete copy and puts it in place.
        copy.modify(metadata={**meta, COMPLETE[0]: True})
        _retire(client, name)
        copy.modify(name=name, metadata=meta or {"kind": "chunks"})
        index.collection = client.get_collection(name, embedding_function=None)
        mark_changed(index.settings)


def _retire(client, name: str) -> None:
    """Rename the live collection ``<name>_retired`` (an older retired one is dropped)."""
    _drop(client, f"{name}{RETIRED_SUFFIX}")
    try:
        live = client.get_collection(name, embedding_function=None)
    except Exception:  # none (a swap stopped after retiring it)
        return
    live.modify(name=f"{name}{RETIRED_SUFFIX}")


@contextlib.contextmanager
def repair_copy(index: ChromaIndex) -> Iterator[RepairCopy]:
    """A :class:`RepairCopy`, swapped in for the chunks collection once the block ends
    without an error."""
    copy = RepairCopy(index, new_copy(index, REPAIR_SUFFIX, index.metadata()))
    yield copy
    swap_in(index, copy.collection)


def drop_leftovers(index: ChromaIndex) -> None:
    """Delete the retired collection and unfinished copies (a rebuild or repair that was
    stopped). Only a writer calls this, under the write lock: embedded, no other process
    is then filling a copy. A server has no such lock, so there only the retired one goes."""
    name = chunks_name(index.settings)
    names = [f"{name}{RETIRED_SUFFIX}"]
    if index.guard is not None:
        names += [f"{name}{suffix}" for suffix in COPIES]
    with index.exclusive():
        for other in names:
            _drop(index.client, other)


def finish_swaps(settings: Settings, client) -> None:
    """A swap stopped part-way is finished here: a complete copy is put in place (never
    lost). An unfinished copy is left alone: a writer may still be filling it."""
    name = chunks_name(settings)
    for suffix in COPIES:
        try:
            copy = client.get_collection(f"{name}{suffix}", embedding_function=None)
        except Exception:  # the usual case: no swap under way
            continue
        meta = dict(copy.metadata or {})
        if not any([meta.pop(key, False) for key in COMPLETE]):
            continue
        with contextlib.suppress(Exception):  # another process finished it first
            _retire(client, name)
            copy.modify(name=name, metadata=meta or {"kind": "chunks"})
            mark_changed(settings)
