"""One benchmark task per process, so each side's peak memory is its own.

``run.py`` starts ``python benchmarks/tasks.py TASK ARGS_JSON OUT_JSON`` and reads
the child's RSS high-water mark from ``os.wait4``; the task writes its timings to
OUT_JSON. Tasks: ingest-abstracta, ingest-peer, ingest-floor, query-abstracta,
query-peer, index-fingerprint (counts and checksums of an index, for run.py --kill-at).
"""

# Component-level in part: ingest-floor reads rag.store's records; _what_if patches rag.ingest.
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _settings(args: dict):
    from rag import load_settings

    return load_settings(data_dir=args.get("data_dir"), embedder=args["embedder"],
                         chroma_url=args.get("chroma_url"), auto_ingest_bundled=False)


def _quantiles(values: list[float]) -> dict:
    from eval.metrics import percentile  # the project's one percentile (linear, as numpy)

    return {"median_ms": round(percentile(values, 50), 2),
            "p95_ms": round(percentile(values, 95), 2),
            "mean_ms": round(statistics.fmean(values), 2), "n": len(values)}


def _profiled(args: dict, fn):
    """Run fn() under cProfile when args['profile'] names an output file."""
    if not args.get("profile"):
        return fn()
    import cProfile

    prof = cProfile.Profile()
    try:
        return prof.runcall(fn)
    finally:
        prof.dump_stats(args["profile"])


def _what_if(args: dict, settings) -> None:
    """Profiling knobs (not used by run.py): try a change to rag.ingest without editing it."""
    import rag.ingest.embedding
    import rag.ingest.pool
    import rag.ingest.write

    if args.get("papers_per_batch"):
        rag.ingest.embedding.PAPERS_PER_BATCH = int(args["papers_per_batch"])
    if args.get("regex_chunker"):
        from chunk_probe import batched_chunker

        fast = batched_chunker(settings)

        def make_chunker(_settings):
            from rag.types import Chunk

            def chunk(paper):
                spans = fast([paper])[0] or [paper.abstract]
                return [Chunk(f"{paper.paper_id}#{i}", paper.paper_id, i,
                              f"{paper.title}\n{span}") for i, span in enumerate(spans)]
            return chunk

        rag.ingest.embedding.make_chunker = make_chunker
    if args.get("no_write"):  # chunk + embed only: the main thread's share of ingest
        rag.ingest.write.write_batch = rag.ingest.pool.write_batch = lambda *a, **k: None


def ingest_abstracta(args: dict) -> dict:
    from rag import Pipeline

    settings = _settings(args)
    _what_if(args, settings)
    pipeline = Pipeline(settings)
    t0 = time.perf_counter()
    _ = pipeline.embedder  # the model loads here, so it is timed apart from the ingest
    t1 = time.perf_counter()
    curve: list[list[float]] = []  # [seconds, records done], every 60 s: the rate as it grows

    def progress(done: int, total: int) -> None:
        now = time.perf_counter() - t1
        if not curve or now - curve[-1][0] >= 60 or done == total:
            curve.append([round(now, 1), done])
            print(f"ingest {done}/{total} records at {now:.0f} s", file=sys.stderr, flush=True)

    report = _profiled(args, lambda: pipeline.ingest([Path(args["path"])], progress))
    t2 = time.perf_counter()
    return {"papers": report.added + report.updated, "chunks": report.chunks,
            "ingest_s": t2 - t1, "model_load_s": t1 - t0, "progress": curve}


def ingest_peer(args: dict) -> dict:
    import peer

    from rag import Pipeline

    settings = _settings(args)
    t0 = time.perf_counter()
    embedder = Pipeline(settings).embedder  # Abstracta's embedder, the same on both sides
    t1 = time.perf_counter()
    out = _profiled(args, lambda: peer.ingest(Path(args["path"]), Path(args["folder"]),
                                             settings, embedder))
    t2 = time.perf_counter()
    return {**out, "ingest_s": t2 - t1, "model_load_s": t1 - t0}


def ingest_floor(args: dict) -> dict:
    """Chroma's own collection.add of Abstracta's chunks and vectors (read back, untimed).

    Component-level: reads the store's raw records (``rag.store``), which the public
    API does not hand out, to time Chroma alone on exactly what Abstracta wrote."""
    import chromadb
    import numpy as np
    from chromadb.config import Settings as ChromaSettings

    from rag.store import open_store
    from rag.store.schema import encode

    store = open_store(_settings(args))
    ids, vecs, metas = [], [], []  # the chunk records as Abstracta wrote them (text in metadata)
    for page in store.scan():  # paged: one get of 300k rows is slow and large
        by_id = store.vectors([r.chunk_id for r in page])
        ids += [r.chunk_id for r in page]
        vecs += [by_id[r.chunk_id] for r in page]
        metas += [encode(r) for r in page]
    papers = len({m["paper_id"] for m in metas})
    vecs = np.asarray(vecs, dtype=np.float32)  # as Abstracta hands them to Chroma
    client = chromadb.PersistentClient(path=str(Path(args["folder"]) / "chroma"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    col = client.get_or_create_collection("floor", embedding_function=None,
                                          configuration={"hnsw": {"space": "cosine"}})
    batch = min(client.get_max_batch_size(), 5000)
    t0 = time.perf_counter()
    for s in range(0, len(ids), batch):
        col.add(ids=ids[s:s + batch], embeddings=vecs[s:s + batch], metadatas=metas[s:s + batch])
    t1 = time.perf_counter()
    return {"papers": papers, "chunks": col.count(), "ingest_s": t1 - t0}


def query_abstracta(args: dict) -> dict:
    from rag import Pipeline

    questions = json.loads(Path(args["questions"]).read_text())
    pipeline = Pipeline(_settings(args))
    t0 = time.perf_counter()
    for q in questions[:3]:  # warm-up: loads the model, the lexical index, Chroma's HNSW
        pipeline.answer(q, use_llm=False)
    warm_s = time.perf_counter() - t0
    search_ms, answer_ms, parts = [], [], {}

    def loop():
        for q in questions:
            timings: dict = {}
            t = time.perf_counter()
            pipeline.search(q, timings=timings)
            search_ms.append((time.perf_counter() - t) * 1000)
            for key, value in timings.items():
                parts.setdefault(key, []).append(value)
            t = time.perf_counter()
            pipeline.answer(q, use_llm=False)
            answer_ms.append((time.perf_counter() - t) * 1000)

    _profiled(args, loop)
    return {"search": _quantiles(search_ms), "answer": _quantiles(answer_ms),
            "search_parts_median_ms": {k: round(statistics.median(v), 2) for k, v in parts.items()},
            "search_parts_p95_ms": {k: _quantiles(v)["p95_ms"] for k, v in parts.items()},
            "warmup_s": warm_s, "chunks": pipeline.count_chunks()}


def query_peer(args: dict) -> dict:
    import peer

    from rag import Pipeline

    settings = _settings(args)
    folder = Path(args["folder"])
    t0 = time.perf_counter()
    peer.build_bm25(folder, settings.candidates)
    bm25_s = time.perf_counter() - t0
    fusion = peer.retriever(folder, Pipeline(settings).embedder, settings.top_k,
                            settings.candidates)
    questions = json.loads(Path(args["questions"]).read_text())
    for q in questions[:3]:
        fusion.retrieve(q)
    times = []

    def loop():
        for q in questions:
            t = time.perf_counter()
            fusion.retrieve(q)
            times.append((time.perf_counter() - t) * 1000)

    _profiled(args, loop)
    return {"search": _quantiles(times), "bm25_build_s": bm25_s}


def _digest(*parts) -> int:
    """A 64-bit hash of these values; summed over a set, an order-free checksum."""
    import hashlib

    text = "\x1e".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def index_fingerprint(args: dict) -> dict:
    """What an index holds, as counts and order-free checksums (sums of 64-bit hashes mod
    2**64, so a million chunks need no sorting and no list in memory): two indexes with
    the same figures hold the same chunks (id, text, paper, dates, sources) and the same
    paper records (id + content hash). ``path``: also the papers the file should give,
    each id with the hash of its first title and last abstract, the way ingest merges
    records that share an id (a file with records known only by their title is not
    modelled: ``expected_exact`` is then False).

    Component-level: reads the store's raw records (``rag.store``) and the file with
    ingest's own reader (``rag.sources``), identity and content hash."""
    from rag.store import open_store

    store = open_store(_settings(args))
    mask = 2**64 - 1
    chunks = papers = chunk_sum = paper_sum = 0
    top: dict[str, int] = {}  # paper id -> highest chunk number (contiguity check)
    for page in store.scan():
        for r in page:
            chunks += 1
            chunk_sum = (chunk_sum + _digest(r.chunk_id, r.text, r.title, r.dates, r.sources,
                                             r.content_hash)) & mask
            top[r.paper_id] = max(top.get(r.paper_id, -1), r.n or 0)
            if r.paper is not None:
                papers += 1
                paper_sum = (paper_sum + _digest(r.paper_id, r.content_hash)) & mask
    numbered = sum(n + 1 for n in top.values())
    out = {"papers": papers, "chunks": chunks, "chunk_checksum": f"{chunk_sum:016x}",
           "paper_checksum": f"{paper_sum:016x}",
           # every paper has a record, and its chunks are #0..#k with none missing or extra
           "consistent": papers == len(top) and numbered == chunks}
    del top
    if args.get("path"):
        out.update(_expected_papers(Path(args["path"])))
    return out


def _expected_papers(path: Path) -> dict:
    """The paper count and paper checksum the file should give (see index_fingerprint).
    Two passes, so that only the few ids with several records keep their texts (a
    million abstracts would take a gigabyte)."""
    from rag.identity import paper_id
    from rag.ingest import content_hash
    from rag.sources import open_path

    stream = open_path(path)
    once: set[str] = set()
    several: dict[str, tuple[str, str] | None] = {}  # id -> (first title, last abstract)
    title_only = 0
    for p in stream:
        pid = paper_id(p.title, p.arxiv_id, p.record_id)
        title_only += pid.startswith("t:")
        if pid in once:
            several[pid] = None
        once.add(pid)
    total = 0
    for p in stream:  # a RecordStream reads its file again on each iteration
        pid = paper_id(p.title, p.arxiv_id, p.record_id)
        if pid in several:
            old = several[pid]
            several[pid] = (old[0] if old else p.title, p.abstract)
        else:
            total += _digest(pid, content_hash(p.title, p.abstract))
    for pid, pair in several.items():
        assert pair is not None
        total += _digest(pid, content_hash(*pair))
    return {"expected_papers": len(once), "expected_paper_checksum": f"{total % 2**64:016x}",
            "expected_exact": title_only == 0}


TASKS = {"ingest-abstracta": ingest_abstracta, "ingest-peer": ingest_peer,
         "ingest-floor": ingest_floor, "query-abstracta": query_abstracta,
         "query-peer": query_peer, "index-fingerprint": index_fingerprint}


def main(argv: list[str]) -> None:
    task, args, out = argv
    result = TASKS[task](json.loads(args))
    Path(out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
