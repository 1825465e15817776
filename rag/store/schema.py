"""How papers and chunks are laid out in Chroma metadata: the one module that knows it.

One record per chunk, id ``<paper id>#<n>``, its text in the metadata key ``text``
(``"<title>\\n<abstract span>"``), with its paper's id, title, dates and sources. List
values (dates, sources) are joined with ``\\x1f`` into one string (the layout every
existing index has). Chunk #0 also carries the paper record: authors, link, title
key, the content hash ingest compares against, how many chunks the paper has (``chunks``:
the doctor and a re-ingest find a lost chunk by it), and the abstract unless the chunk
text is exactly title + abstract. Everything else reads typed records
(:class:`ChunkRecord`, :class:`rag.types.StoredPaper`) made here.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.types import StoredPaper

SEP = "\x1f"  # joins list values (dates, sources) inside one Chroma metadata string
PAGE = 5000  # rows per Chroma read
FIRST = {"n": 0}  # Chroma filter for the chunks that carry paper records (chunk #0)
REQUIRED = ("paper_id", "n", "text", "title")  # what retrieval reads from every chunk


def split_list(value: str | None) -> tuple[str, ...]:
    """A stored list value back as a tuple: ``"a\\x1fb"`` -> ``("a", "b")``; None -> ()."""
    return tuple(v for v in (value or "").split(SEP) if v)


def join_list(values) -> str:
    return SEP.join(values)


def metadata_for_paper(paper: StoredPaper, content_hash: str, title_key: str) -> dict:
    """The paper record, as chunk #0 carries it."""
    return {
        "title": paper.title, "dates": join_list(paper.dates),
        "sources": join_list(paper.sources), "abstract": paper.abstract,
        "authors": paper.authors[:2000], "url": paper.url,
        "hash": content_hash, "title_key": title_key,
        # Only when known: an index written before categories were kept reads the same.
        **({"categories": paper.categories[:500]} if paper.categories else {}),
    }


def chunk_metadata(paper_id: str, n: int, paper_meta: dict, text: str,
                   chunks: int | None = None) -> dict:
    """What every chunk knows: its text, its paper's id, title, dates and sources.

    Chunk #0 also carries the paper record (``paper_meta``) and the paper's chunk count
    (``chunks``, when known: indexes written before it was kept have none); its abstract
    is left out when the chunk text is exactly title + abstract, the common case of a
    one-chunk abstract (it would be the same kilobyte twice).
    """
    meta = {"paper_id": paper_id, "n": n, "text": text, "title": paper_meta["title"],
            "dates": paper_meta["dates"], "sources": paper_meta["sources"]}
    if n == 0:
        meta.update(paper_meta)
        if chunks:
            meta["chunks"] = chunks
        if text == f"{paper_meta['title']}\n{paper_meta['abstract']}":
            del meta["abstract"]
    return meta


def paper_from_meta(paper_id: str, meta: dict) -> StoredPaper:
    """The paper record on a chunk #0's metadata. A missing abstract is the chunk text
    after ``"<title>\\n"`` (see :func:`chunk_metadata`)."""
    title = meta.get("title", "")
    abstract = meta["abstract"] if "abstract" in meta else meta.get("text", "")[len(title) + 1:]
    return StoredPaper(
        paper_id=paper_id, title=title, abstract=abstract,
        dates=split_list(meta.get("dates")), sources=split_list(meta.get("sources")),
        authors=meta.get("authors", ""), url=meta.get("url", ""),
        categories=meta.get("categories", ""),
    )


def is_paper_record(meta: dict | None) -> bool:
    return bool(meta) and "hash" in meta  # type: ignore[operator]


def segment_fields(metas: list[dict]) -> dict[str, list]:
    """What a lexical segment keeps of each chunk's metadata (see :mod:`rag.segments`)."""
    return {
        "paper_ids": [m["paper_id"] for m in metas], "texts": [m["text"] for m in metas],
        "batch": [int(m.get("batch", 0) or 0) for m in metas],
        "record": [is_paper_record(m) and m.get("n") == 0 for m in metas],
        "dates": [m.get("dates", "") for m in metas],
        "sources": [m.get("sources", "") for m in metas]}


@dataclass(frozen=True)
class ChunkRecord:
    """One stored chunk as plain values; ``paper`` is set on chunk #0 (the paper record)."""

    chunk_id: str
    paper_id: str
    n: int | None
    text: str
    title: str
    dates: tuple[str, ...]
    sources: tuple[str, ...]
    complete: bool  # carries every key retrieval needs (see REQUIRED)
    paper: StoredPaper | None = None
    content_hash: str = ""
    title_key: str = ""
    chunks: int | None = None  # on chunk #0: the paper's chunk count, when recorded

    def chunk_ids(self) -> list[str]:
        """The ids of every chunk the paper record says the paper has ([] when unknown)."""
        return [f"{self.paper_id}#{n}" for n in range(self.chunks or 0)]

    def paper_metadata(self) -> dict:
        """The paper record in the stored layout (what :func:`chunk_metadata` takes)."""
        from rag.identity import title_key

        assert self.paper is not None, "only chunk #0 carries the paper record"
        return metadata_for_paper(self.paper, self.content_hash,
                                  self.title_key or title_key(self.paper.title))


def decode(chunk_id: str, meta: dict | None) -> ChunkRecord:
    """A chunk's stored metadata (None or incomplete for a damaged one) as a record."""
    meta = meta or {}
    pid = meta.get("paper_id") or chunk_id.rsplit("#", 1)[0]
    record = is_paper_record(meta) and chunk_id.endswith("#0")
    return ChunkRecord(
        chunk_id=chunk_id, paper_id=pid, n=meta.get("n"), text=meta.get("text", ""),
        title=meta.get("title", ""), dates=split_list(meta.get("dates")),
        sources=split_list(meta.get("sources")), complete=all(k in meta for k in REQUIRED),
        paper=paper_from_meta(pid, meta) if record else None,
        content_hash=meta.get("hash", "") if record else "",
        title_key=meta.get("title_key", "") if record else "",
        chunks=meta.get("chunks") if record else None,
    )


def encode(record: ChunkRecord) -> dict:
    """A record back in the stored layout: ``encode(decode(cid, meta)) == meta`` for every
    chunk ingest writes (a benchmark writes Abstracta's records into a bare collection)."""
    if record.paper is not None:
        return chunk_metadata(record.paper_id, 0, record.paper_metadata(), record.text,
                              record.chunks)
    paper = {"title": record.title, "dates": join_list(record.dates),
             "sources": join_list(record.sources)}
    return chunk_metadata(record.paper_id, record.n or 0, paper, record.text)


def papers_where(dates: list[str] | None, sources: list[str] | None) -> dict:
    """Chroma ``where`` for the paper records whose stored dates and sources values are
    among these (None: any). Values are stored strings as :func:`facet_values` lists."""
    clauses: list[dict] = [FIRST]
    if dates is not None:
        clauses.append({"dates": {"$in": dates}})
    if sources is not None:
        clauses.append({"sources": {"$in": sources}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
