"""Reads and writes of papers and chunks, over a :class:`rag.store.chroma.ChromaIndex`.

Plain functions of the collection, which :class:`rag.store.Store` binds as its methods;
the metadata layout is :mod:`rag.store.schema`'s.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rag.store.cache import Facets
from rag.store.chroma import ChromaIndex
from rag.store.schema import (
    FIRST,
    PAGE,
    ChunkRecord,
    chunk_metadata,
    decode,
    is_paper_record,
    paper_from_meta,
    papers_where,
    split_list,
)
from rag.types import StoredPaper


def first_chunks(index: ChromaIndex, ids: list[str]) -> dict[str, dict]:
    """Metadata of chunk #0 of these papers, by paper id, paper record or not."""
    out: dict[str, dict] = {}
    for start in range(0, len(ids), PAGE):
        res = index.read("get", ids=[f"{pid}#0" for pid in ids[start:start + PAGE]],
                         include=["metadatas"])
        out.update((m["paper_id"], m) for m in res["metadatas"])
    return out


def paper_meta(index: ChromaIndex, ids: list[str]) -> dict[str, dict]:
    """Stored metadata of the paper records (chunk #0) of these papers, by paper id."""
    return {pid: m for pid, m in first_chunks(index, ids).items() if is_paper_record(m)}


def paper_records(index: ChromaIndex, ids: list[str]) -> dict[str, ChunkRecord]:
    """The paper records (chunk #0) with their content hashes, by paper id."""
    return {pid: decode(f"{pid}#0", m) for pid, m in paper_meta(index, list(ids)).items()}


def incomplete(index: ChromaIndex, records: dict[str, ChunkRecord]) -> set[str]:
    """The papers among these records that lack a chunk their record counts (a chunk lost
    to damage: the paper is only partly searchable). Records without a count (indexes
    written before it was kept) are taken as complete."""
    want = [cid for rec in records.values() for cid in rec.chunk_ids()]
    have: set[str] = set()
    for start in range(0, len(want), PAGE):
        have.update(index.read("get", ids=want[start:start + PAGE], include=[])["ids"])
    return {cid.rsplit("#", 1)[0] for cid in want if cid not in have}


def get_papers(index: ChromaIndex, ids: list[str]) -> dict[str, StoredPaper]:
    """Paper records by id (missing ids are left out)."""
    return {pid: paper_from_meta(pid, m) for pid, m in paper_meta(index, list(ids)).items()}


def iter_papers(index: ChromaIndex) -> Iterator[StoredPaper]:
    """Every paper record (paged), for the library view."""
    offset = 0
    while True:
        res = index.read("get", where=FIRST, limit=PAGE, offset=offset, include=["metadatas"])
        for meta in res["metadatas"]:
            if is_paper_record(meta):
                yield paper_from_meta(meta["paper_id"], meta)
        if len(res["ids"]) < PAGE:
            return
        offset += PAGE


def scan(index: ChromaIndex, page: int = PAGE) -> Iterator[list[ChunkRecord]]:
    """Every chunk as a typed record, a page at a time (records of damaged chunks have
    ``complete`` False)."""
    offset = 0
    while True:
        res = index.read("get", limit=page, offset=offset, include=["metadatas"])
        yield [decode(cid, m) for cid, m in zip(res["ids"], res["metadatas"], strict=False)]
        if len(res["ids"]) < page:
            return
        offset += page


def vectors(index: ChromaIndex, chunk_ids: list[str]) -> dict[str, np.ndarray]:
    """The vectors of these chunks, by chunk id (missing ones left out)."""
    res = index.read("get", ids=chunk_ids, include=["embeddings"])
    return {c: np.asarray(v, dtype=np.float32)
            for c, v in zip(res["ids"], res["embeddings"], strict=False)}


def filter_papers(index: ChromaIndex, facets: Facets, dates, sources) -> list[str]:
    """Ids of the papers whose dates and sources the predicates keep (None: any).

    The predicates run once per distinct stored value (a few dozen listing dates and
    files in the usual index; one per date combination), and Chroma selects the paper
    records with a ``where`` on the values kept: no paper record is read.
    """
    wanted = [None if keep is None else [v for v in values if keep(split_list(v))]
              for keep, values in ((dates, facets.dates), (sources, facets.sources))]
    if any(w == [] for w in wanted):
        return []
    res = index.read("get", where=papers_where(*wanted), include=[])
    return [cid.rsplit("#", 1)[0] for cid in res["ids"]]


def ids_by_title_key(index: ChromaIndex, keys: list[str]) -> dict[str, list[str]]:
    """title key -> the ids of the indexed papers with that title (several papers
    may share one: "Summary", "Erratum"), sorted."""
    out: dict[str, set[str]] = {}
    for start in range(0, len(keys), 500):
        res = index.read("get", where={"title_key": {"$in": keys[start:start + 500]}},
                         include=["metadatas"])
        for m in res["metadatas"]:
            out.setdefault(m["title_key"], set()).add(m["paper_id"])
    return {key: sorted(ids) for key, ids in out.items()}


def chunk_vectors(index: ChromaIndex, paper_ids: list[str],
                  guess: int | dict[str, int] = 32) -> dict[str, np.ndarray]:
    """The chunk vectors of each paper (rows of one array per paper id).

    Chunk ids are ``<paper id>#<n>``, so the first ``guess`` of each paper (one number,
    or one per paper id) are read by id (1 ms at 100k chunks, against 17 ms for a
    ``where`` on paper_id); only a paper that fills all of them is read again by
    ``where``.
    """
    def by_paper(**query) -> dict[str, list]:
        res = index.read("get", include=["embeddings"], **query)
        rows: dict[str, list] = {}
        for cid, vec in zip(res["ids"], res["embeddings"], strict=False):
            rows.setdefault(cid.rpartition("#")[0], []).append(vec)
        return rows

    tries = guess if isinstance(guess, dict) else dict.fromkeys(paper_ids, guess)
    rows = by_paper(ids=[f"{pid}#{i}" for pid in paper_ids for i in range(tries.get(pid, 32))])
    more = [pid for pid, vecs in rows.items() if len(vecs) >= tries.get(pid, 32)]
    if more:
        rows.update(by_paper(where={"paper_id": {"$in": more}}))
    return {pid: np.asarray(vecs, dtype=np.float32) for pid, vecs in rows.items()}


def replace_chunks(index: ChromaIndex, paper_ids: list[str], ids, embeddings, metadatas,
                   delete_old: bool = True, analyzed: list[list[str]] | None = None) -> None:
    """Drop the old chunks of these papers, then add the new ones, paper records last.

    Texts travel in the metadata (``text``), not as Chroma documents: Chroma builds
    a full-text index over documents, which we never query (BM25 is ours), and
    which doubles the cost of every write (measured: 4,000 chunks in 2.44 s as
    documents, 1.19 s as metadata).
    """
    if delete_old:
        for start in range(0, len(paper_ids), 1000):
            index.write("delete", where={"paper_id": {"$in": paper_ids[start:start + 1000]}})
    if index.batch is not None:  # what a lexical cache reads to catch up
        metadatas = [{**m, "batch": index.batch} for m in metadatas]
    # Chunk #0 holds the paper record, the commit marker: write it after the rest.
    order = sorted(range(len(ids)), key=lambda i: metadatas[i]["n"] == 0)
    ids = [ids[i] for i in order]
    embeddings = np.asarray(embeddings)[order]
    metadatas = [metadatas[i] for i in order]
    if analyzed is not None:
        analyzed = [analyzed[i] for i in order]
    for start in range(0, len(ids), PAGE):
        end = start + PAGE
        index.write("upsert", ids=ids[start:end], embeddings=embeddings[start:end],
                    metadatas=metadatas[start:end])
        if index.prepared is not None:  # the batch's own lexical segment, as written
            index.prepared.add(ids[start:end], metadatas[start:end],
                               None if analyzed is None else analyzed[start:end])


def update_paper_meta(index: ChromaIndex, ids: list[str], metadatas: list[dict]) -> None:
    """New listings for unchanged papers: rewrite the metadata of all their chunks."""
    by_paper = dict(zip(ids, metadatas, strict=False))
    for start in range(0, len(ids), 500):
        res = index.read("get", where={"paper_id": {"$in": ids[start:start + 500]}},
                         include=["metadatas"])
        if res["ids"]:
            metas = [chunk_metadata(m["paper_id"], m.get("n", 0), by_paper[m["paper_id"]],
                                    m.get("text", ""), m.get("chunks"))
                     for m in res["metadatas"]]
            if index.batch is not None:  # the lexical cache reads their new facet values
                metas = [{**m, "batch": index.batch} for m in metas]
            index.write("update", ids=res["ids"], metadatas=metas)
            if index.prepared is not None:
                index.prepared.add(res["ids"], metas)


def dense(index: ChromaIndex, vector: np.ndarray, n: int, paper_ids: list[str] | None):
    """(paper id of each chunk, cosine similarity), best first.

    Ids and distances only: the paper id is the chunk id's part before its last "#"
    (``<paper id>#<n>``), and asking Chroma for the metadata of 100 chunks costs 7x the
    search itself (100k chunks: 24 ms with metadata, 3.4 ms without).
    """
    where = {"paper_id": {"$in": paper_ids}} if paper_ids is not None else None
    res = index.read("query", "search", query_embeddings=[vector.tolist()], n_results=n,
                     where=where, include=["distances"])
    pids = [cid.rpartition("#")[0] for cid in res["ids"][0]]
    return pids, [1.0 - d for d in res["distances"][0]]  # cosine distance -> similarity


def unreadable(index: ChromaIndex, ids: list[str]) -> list[str]:
    """The chunks among ``ids`` whose vectors Chroma cannot return (a damaged index;
    failed pages bisected)."""
    try:
        index.collection.get(ids=ids, include=["embeddings"])
        return []
    except Exception:
        if len(ids) == 1:
            return ids
    half = len(ids) // 2
    return unreadable(index, ids[:half]) + unreadable(index, ids[half:])
