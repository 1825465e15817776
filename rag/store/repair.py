"""The copy a repair fills and swaps in (``ask doctor --repair``, :mod:`rag.doctor`).

A damaged vector index cannot be patched in place: Chroma fails to apply a delete or an
upsert of a record its graph has lost, and then cannot open the index at all. So a
repair copies the chunks it keeps into ``<name>_chunks_repair``, adds the re-embedded
ones, marks the copy complete and swaps it in. Killed during the swap, the next open
finishes it (:func:`finish_repair`). Both halves of the swap live here, so that
opening (:mod:`rag.store.open`) and the facade (:mod:`rag.store.store`) import this
module and it imports neither.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from rag.settings import Settings
from rag.store.chroma import ChromaIndex, chunks_name, create_chunks, mark_changed
from rag.store.schema import ChunkRecord, chunk_metadata
from rag.types import Chunk

REPAIR_SUFFIX = "_repair"  # the collection a repair fills before it is swapped in


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
        self.collection.upsert(ids=old["ids"], embeddings=old["embeddings"],
                               metadatas=old["metadatas"])
        self.copied += len(old["ids"])

    def add(self, chunks: list[Chunk], vectors: np.ndarray,
            records: dict[str, ChunkRecord]) -> None:
        """Write re-made chunks; ``records``: their papers' records, by paper id."""
        self.collection.upsert(
            ids=[c.chunk_id for c in chunks], embeddings=np.asarray(vectors),
            metadatas=[chunk_metadata(c.paper_id, c.index, records[c.paper_id].paper_metadata(),
                                      c.text) for c in chunks])


@contextlib.contextmanager
def repair_copy(index: ChromaIndex) -> Iterator[RepairCopy]:
    """A :class:`RepairCopy`, swapped in for the chunks collection once the block ends
    without an error (under ``chroma.lock``, held throughout)."""
    index.writable()
    client, name = index.client, index.collection.name
    tmp = f"{name}{REPAIR_SUFFIX}"
    with index.exclusive():
        with contextlib.suppress(Exception):  # a repair that was stopped part-way
            client.delete_collection(tmp)
        meta = index.metadata()
        copy = RepairCopy(index, create_chunks(client, tmp, meta, existing=False))
        yield copy
        # Complete: swap it in. Killed between these two calls, the next open finds the
        # finished copy under its temporary name and puts it in place.
        copy.collection.modify(metadata={**meta, "repair_complete": True})
        client.delete_collection(name)
        copy.collection.modify(name=name, metadata=meta)
        index.collection = client.get_collection(name, embedding_function=None)
        mark_changed(index.settings)


def finish_repair(settings: Settings, client) -> None:
    """`ask doctor --repair` copies the chunks into ``<name>_chunks_repair`` and swaps it in;
    stopped during the swap, the complete copy is put in place here (never lost)."""
    name = chunks_name(settings)
    try:
        copy = client.get_collection(f"{name}{REPAIR_SUFFIX}", embedding_function=None)
    except Exception:  # the usual case: no repair under way
        return
    meta = dict(copy.metadata or {})
    if not meta.pop("repair_complete", False):
        client.delete_collection(copy.name)  # a repair stopped part-way: the original stands
        return
    with contextlib.suppress(Exception):  # already gone
        client.delete_collection(name)
    copy.modify(name=name, metadata=meta)
    mark_changed(settings)
