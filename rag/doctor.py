"""`ask doctor`: check the index and say in plain words what is wrong; ``--repair`` fixes it.

Checks, in order:

1. every chunk's metadata has what retrieval needs (paper id, chunk number, text, title);
2. every paper with chunks has its chunk #0 paper record (the commit marker an ingest
   writes last): without it the paper was half-written and is invisible;
3. every chunk's vector can be read back (two processes writing one embedded index at
   once left chunks that fail with "Error finding id" / "Error getting embedding");
4. the BM25 cache of the current generation holds exactly the collection's chunks;
5. the recorded embedding model is the configured one;
6. a sample of papers is found by dense search with their own vector.

The repair rebuilds each broken paper from what the index itself holds (the paper
record on chunk #0: title, abstract, dates, sources), re-chunks and re-embeds it,
then rewrites its chunks (old ones deleted first, the record last), rebuilds the BM25
cache and saves the vector index whole. Papers whose record is missing cannot be
rebuilt (their first chunk is gone): their stray chunks are removed and the files
to ingest again are named. It holds the write lock, like an ingest.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field

from rag.store import PAGE, Store, _paper, split_list

REQUIRED = ("paper_id", "n", "text", "title")
SAMPLE = 200  # papers checked by their own vector (a query each, batched)


@dataclass
class Checkup:
    papers: int = 0
    chunks: int = 0
    missing_meta: list[str] = field(default_factory=list)  # chunk ids
    no_record: dict[str, set] = field(default_factory=dict)  # paper id -> its sources
    unreadable: list[str] = field(default_factory=list)  # chunk ids
    lexical: str = ""  # what is wrong with the BM25 cache, or ""
    model: str = ""  # the model mismatch, or ""
    sampled: int = 0
    not_found: list[str] = field(default_factory=list)  # paper ids
    repaired: list[str] = field(default_factory=list)  # what --repair did

    @property
    def broken_papers(self) -> set[str]:
        """Papers with a record whose chunks need rewriting."""
        ids = {cid.rsplit("#", 1)[0] for cid in self.missing_meta + self.unreadable}
        return (ids | set(self.not_found)) - set(self.no_record)

    @property
    def clean(self) -> bool:
        return not (self.missing_meta or self.no_record or self.unreadable or self.lexical
                    or self.model or self.not_found)

    def lines(self) -> list[str]:
        out = [f"Checked {self.papers} papers in {self.chunks} chunks."]
        if self.missing_meta:
            out.append(f"- {len(self.missing_meta)} chunks lack metadata retrieval needs "
                       f"(e.g. {self.missing_meta[0]}).")
        if self.no_record:
            out.append(f"- {_n(len(self.no_record), 'paper')} half-written (chunks without the "
                       "paper record an ingest writes last): they are not searchable.")
        if self.unreadable:
            out.append(f"- {_n(len(self.unreadable), 'chunk')} with vectors that cannot be read "
                       "back (damaged vector index, e.g. after two processes wrote it at once).")
        if self.lexical:
            out.append(f"- BM25 cache: {self.lexical}.")
        if self.model:
            out.append(f"- {self.model}")
        if self.not_found:
            out.append(f"- {len(self.not_found)} of {self.sampled} sampled papers are not "
                       "found by dense search with their own vector.")
        elif self.sampled:
            out.append(f"- dense search found all {self.sampled} sampled papers by their own "
                       "vector.")
        return out


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _required_ok(meta: dict | None) -> bool:
    return bool(meta) and all(k in meta for k in REQUIRED)


def _unreadable(chunks, ids: list[str]) -> list[str]:
    """The ids among ``ids`` whose vectors Chroma cannot return (bisecting failed pages)."""
    try:
        chunks.get(ids=ids, include=["embeddings"])
        return []
    except Exception:
        if len(ids) == 1:
            return ids
    half = len(ids) // 2
    return _unreadable(chunks, ids[:half]) + _unreadable(chunks, ids[half:])


def check(store: Store, model: str, sample: int = SAMPLE, seed: int = 0) -> Checkup:
    """Everything :mod:`rag.doctor` checks, read-only."""
    from rag import lexical

    store.refresh()
    chunks = store.chunks
    up = Checkup()
    ids_all: list[str] = []
    records: dict[str, dict] = {}
    by_paper: dict[str, set] = {}
    offset = 0
    while True:
        res = chunks.get(limit=PAGE, offset=offset, include=["metadatas"])
        for cid, meta in zip(res["ids"], res["metadatas"], strict=False):
            ids_all.append(cid)
            pid = (meta or {}).get("paper_id") or cid.rsplit("#", 1)[0]
            if not _required_ok(meta):
                up.missing_meta.append(cid)
            by_paper.setdefault(pid, set()).update(split_list((meta or {}).get("sources")))
            if cid.endswith("#0") and meta and "hash" in meta:
                records[pid] = meta
        if len(res["ids"]) < PAGE:
            break
        offset += PAGE
    up.chunks, up.papers = len(ids_all), len(records)
    up.no_record = {pid: srcs for pid, srcs in by_paper.items() if pid not in records}
    for start in range(0, len(ids_all), 500):
        up.unreadable += _unreadable(chunks, ids_all[start:start + 500])

    gen = store.generation()
    cached = lexical.load(store._lexical_dir(), gen)
    if cached is None:
        if (store._lexical_dir() / "manifest.json").exists():
            up.lexical = "built for another state of the index (it is rebuilt on the next question)"
    elif set(map(str, cached.chunk_ids)) != set(ids_all):
        up.lexical = (f"holds {len(cached.chunk_ids)} chunks but the index has {len(ids_all)}"
                      " under the same generation (out of step)")

    recorded = store.embed_model
    if recorded and recorded != model:
        up.model = (f"The index was built with embedding model '{recorded}' but '{model}' is "
                    "configured: set ABSTRACTA_EMBEDDER back, or run `ask ingest --rebuild`.")

    bad = set(up.unreadable)
    pool = sorted(pid for pid in records if f"{pid}#0" not in bad)
    picked = random.Random(seed).sample(pool, min(sample, len(pool)))
    up.sampled = len(picked)
    for start in range(0, len(picked), 100):
        part = picked[start:start + 100]
        vecs = chunks.get(ids=[f"{p}#0" for p in part], include=["embeddings"])
        own = dict(zip(vecs["ids"], vecs["embeddings"], strict=False))
        query = [f"{p}#0" for p in part if f"{p}#0" in own]
        up.not_found += [
            c.rsplit("#", 1)[0]
            for c, got in zip(query, _knn(chunks, query, own), strict=False)
            if c not in got
        ]
    return up


def _knn(chunks, ids: list[str], vectors: dict) -> list[list[str]]:
    """Top-10 chunk ids for each vector; [] for a query that a damaged index fails."""
    try:
        return chunks.query(query_embeddings=[vectors[c] for c in ids], n_results=10,
                            include=[])["ids"]
    except Exception:
        if len(ids) == 1:
            return [[]]
    half = len(ids) // 2
    return _knn(chunks, ids[:half], vectors) + _knn(chunks, ids[half:], vectors)


def repair(store: Store, settings, embedder, up: Checkup) -> Checkup:
    """Fix what :func:`check` found (holding the write lock); returns ``up`` with
    ``repaired`` filled in. No paper with a record is dropped.

    A damaged vector index cannot be patched in place: Chroma fails to apply a delete or
    an upsert of a record its graph has lost ("Failed to apply logs to the hnsw segment
    writer"), and then cannot open the index at all. So the chunks are copied into a new
    collection (readable vectors as they are; broken papers re-chunked and re-embedded
    from their records), which replaces the old one only once it is complete.
    """
    from rag.ingest import _writer

    with _writer(store, settings, True, None, None):
        if up.missing_meta or up.no_record or up.unreadable or up.not_found:
            _rebuild(store, settings, embedder, up)
        store.flush()
        store.bump_generation(indexed=True)
        store.lexical()
        up.repaired.append("rebuilt the BM25 cache and saved the vector index")
    return up


def _rebuild(store: Store, settings, embedder, up: Checkup) -> None:
    import numpy as np

    from rag.ingest import make_chunker
    from rag.store import EF_SEARCH, chunk_metadata

    old, client = store.chunks, store._client
    name, tmp = old.name, f"{old.name}{REPAIR_SUFFIX}"
    broken, dropped, unreadable = up.broken_papers, set(up.no_record), set(up.unreadable)
    with store._guard.hold(exclusive=True) if store._guard else _nothing():
        with contextlib.suppress(Exception):  # a repair that was stopped part-way
            client.delete_collection(tmp)
        meta = {k: v for k, v in (old.metadata or {}).items()}
        new = client.create_collection(
            tmp, embedding_function=None, metadata=meta,
            configuration={"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}})
        copied = offset = 0
        while True:
            res = old.get(limit=PAGE, offset=offset, include=["metadatas"])
            keep = [(cid, m) for cid, m in zip(res["ids"], res["metadatas"], strict=False)
                    if cid.rsplit("#", 1)[0] not in broken | dropped and cid not in unreadable
                    and _required_ok(m)]
            if keep:
                vecs = old.get(ids=[c for c, _ in keep], include=["embeddings"])
                by_id = dict(zip(vecs["ids"], vecs["embeddings"], strict=False))
                new.upsert(ids=[c for c, _ in keep], embeddings=[by_id[c] for c, _ in keep],
                           metadatas=[m for _, m in keep])
                copied += len(keep)
            if len(res["ids"]) < PAGE:
                break
            offset += PAGE
        chunker, rewritten = make_chunker(settings), 0
        todo = sorted(broken)
        for start in range(0, len(todo), 200):
            metas = old.get(ids=[f"{p}#0" for p in todo[start:start + 200]],
                            include=["metadatas"])["metadatas"]
            papers = [(_paper(m["paper_id"], m), m) for m in metas if m and "hash" in m]
            pieces = [(c, rec) for paper, rec in papers for c in chunker(paper)]
            if not pieces:
                continue
            vectors = np.asarray(embedder.embed_documents([c.text for c, _ in pieces]))
            new.upsert(ids=[c.chunk_id for c, _ in pieces], embeddings=vectors,
                       metadatas=[chunk_metadata(c.paper_id, c.index, _paper_meta(rec), c.text)
                                  for c, rec in pieces])
            rewritten += len(papers)
        # Complete: swap it in. Killed between these two calls, the next open finds the
        # finished copy under its temporary name and puts it in place (store._open).
        new.modify(metadata={**meta, "repair_complete": True})
        client.delete_collection(name)
        new.modify(name=name, metadata=meta)
        store.chunks = client.get_collection(name, embedding_function=None)
    if dropped:
        files = sorted({s for srcs in up.no_record.values() for s in srcs})
        up.repaired.append(
            f"removed the chunks of {len(dropped)} half-written papers; ingest "
            f"{', '.join(files[:5]) or 'their files'}{' ...' if len(files) > 5 else ''} "
            "again to add them")
    up.repaired.append(f"copied {copied} chunks into a new vector index and re-embedded "
                       f"{rewritten} papers from their records")


def _paper_meta(record: dict) -> dict:
    """The paper record part of a chunk #0's metadata (what chunk_metadata expects)."""
    from rag.identity import title_key
    from rag.store import metadata_for_paper

    paper = _paper(record["paper_id"], record)
    return metadata_for_paper(paper, record["hash"], record.get("title_key") or
                              title_key(paper.title))


def _nothing():
    import contextlib

    return contextlib.nullcontext()


REPAIR_SUFFIX = "_repair"
