"""The lexical segment of an ingest's own writes, counted while it writes them.

After an ingest, the lexical cache must hold the chunks it wrote. Reading them back
from Chroma and tokenizing them then (:func:`rag.store.cache.catch_up`) took 36 s of a
93 s ingest of 20k papers, after the last write, on one core. Instead, an ingest that
holds the embedded write lock records each chunk as it writes it: the worker processes
that chunk and embed also cut the words (on the core Chroma's writes leave free), and a
:class:`rag.segments.Builder` counts them, spilling within its memory budget. When the
batch closes, the cache commits that segment (:func:`rag.store.cache.from_prepared`)
instead of reading the chunks back, if the cache it extends is the state the ingest
started from and the counts agree; otherwise it catches up the usual way, so a segment
recorded here is never trusted past what Chroma holds.
"""

from __future__ import annotations

from pathlib import Path

from rag import segments
from rag.store.schema import is_paper_record, segment_fields

# Paper records kept for the authors/categories catch-up (rag.store.cache's people):
# past this many, the saved people are left to be recounted when next asked for.
PEOPLE_RECORDS = 100_000


class Prepared:
    """What one write batch wrote, as a segment in the making.

    ``start_generation``: the collection's generation just before the batch opened (the
    cache this segment extends must be of it); ``empty``: the collection held no chunk
    then (the segment is then the whole index)."""

    def __init__(self, start_generation: str, empty: bool, workdir: Path):
        self.start_generation, self.empty = start_generation, empty
        self.builder = segments.Builder(workdir=workdir)
        self.records: list[dict] | None = []  # people keys of the paper records written
        self.touched: set[str] | None = set()  # their papers (None with records)

    def add(self, ids: list[str], metas: list[dict],
            analyzed: list[list[str]] | None = None) -> None:
        """Chunks just written (``metas`` as Chroma holds them, ``batch`` included);
        ``analyzed``: the words of each text, when the caller cut them already."""
        f = segment_fields(metas)
        self.builder.add(ids, f["paper_ids"], f["texts"], f["batch"], f["record"],
                         f["dates"], f["sources"], analyzed=analyzed)
        if self.records is None or self.touched is None:
            return
        self.touched.update(f["paper_ids"])
        self.records += [{k: m.get(k, "") for k in ("paper_id", "n", "hash", "authors",
                                                     "categories")}
                         for m in metas if is_paper_record(m) and m.get("n") == 0]
        if len(self.records) > PEOPLE_RECORDS:
            self.records = self.touched = None

    def people_metas(self) -> list[dict] | None:
        """The metadata the people catch-up reads (None: too many papers; recount)."""
        if self.records is None or self.touched is None:
            return None
        return [{"paper_id": p} for p in self.touched] + self.records

    def close(self) -> None:
        """Remove the builder's spills (a segment written from it is kept)."""
        self.builder.close()
