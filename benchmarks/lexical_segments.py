"""Adding 1,000 papers to an index: time until lexical search is current (issue 23).

Two parts, figures side by side with today's full rebuild:

1. **Lexical alone, at full size** (no Chroma): a base of N synthetic papers
   (benchmarks/make_corpus.py texts, one chunk each: title + abstract) as one segment;
   then 1,000 new papers and 20 rewritten ones: the catch-up (rag.store.cache.changes +
   apply: a new segment, deletion files, the manifest swap) plus opening the new
   snapshot and one search, next to building the whole index again from the texts
   (what today's rebuild does after reading every chunk back from Chroma).
2. **Through Chroma**, embedded and a `chroma run` server with a second client that did
   not write: M papers written with random 64-d vectors (lexical search does not read
   vectors; random ones keep the writes cheap), the cache built, then 1,000 more written
   in one batch; from the end of those writes to the reader's first lexical search on the
   new snapshot (``store.lexical()`` then ``top``), next to a full build of the cache from
   the collection (``rag.store.cache.build``).

    python benchmarks/lexical_segments.py --papers 100000 --chroma-papers 20000

Prints a table and writes benchmarks/results/lexical_segments.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "lexical_segments.json"
QUESTION = "structured sparsity for large language model inference"


def synthetic(n: int, seed: int) -> list[tuple[str, str, str]]:
    """(chunk id, paper id, text) of n synthetic papers, one chunk each."""
    from make_corpus import make_papers

    out = []
    for p in make_papers(n, seed=seed):
        pid = f"arxiv:{p['id']}-{seed}"
        out.append((f"{pid}#0", pid, f"{p['title']}\n{p['abstract']}"))
    return out


def _fields(chunks, batch):
    return {"paper_ids": [c[1] for c in chunks], "texts": [c[2] for c in chunks],
            "batch": [batch] * len(chunks), "record": [True] * len(chunks),
            "dates": ["2026-12-02"] * len(chunks), "sources": ["feed"] * len(chunks)}


def lexical_part(n: int, work: Path) -> dict:
    from rag import lexical, segments
    from rag.store.cache import apply, changes
    from rag.text import terms

    base_chunks = synthetic(n, seed=11)
    added = synthetic(1000, seed=12)
    rewritten = [(cid, pid, text + " revised with sliding windows") for cid, pid, text in
                 base_chunks[:20]]
    folder = work / "lexical"

    def full(chunks, into):
        shutil.rmtree(into, ignore_errors=True)
        t = time.perf_counter()
        builder = segments.Builder(workdir=into.parent)
        f = _fields(chunks, 1)
        for s in range(0, len(chunks), 1000):
            builder.add([c[0] for c in chunks[s:s + 1000]], *(v[s:s + 1000] for v in (
                f["paper_ids"], f["texts"], f["batch"], f["record"], f["dates"],
                f["sources"])))
        builder.write(into / "seg-base")
        segments.write_manifest(into, {"generation": "g1", "low": 2, "segments": [
            {"name": "seg-base", "deleted": None}]})
        _must(lexical.load(into, "g1")).top(terms(QUESTION), 100)
        return time.perf_counter() - t

    base_s = full(base_chunks, folder)
    new = added + rewritten
    t = time.perf_counter()
    base = _must(lexical.load(folder))
    ids, f = [c[0] for c in new], _fields(new, 2)
    delete, fresh_rows = changes(base, ids, f, 2)
    apply(base, ids, f, delete, fresh_rows, {"generation": "g2", "low": 3})
    snap = _must(lexical.load(folder, "g2"))
    snap.top(terms(QUESTION), 100)
    catch_up_s = time.perf_counter() - t
    live = [c for c in base_chunks[20:]] + added + rewritten
    rebuild_s = full(live, work / "rebuilt")
    return {"base_chunks": n, "added": len(added), "rewritten": len(rewritten),
            "catch_up_s": round(catch_up_s, 2), "full_rebuild_s": round(rebuild_s, 2),
            "base_build_s": round(base_s, 2), "segments": len(snap.segments)}


def _must(lex):
    assert lex is not None, "no lexical index"
    return lex


def _write(store, chunks, vectors):
    from rag.store import chunk_metadata

    store.start_batch()
    for s in range(0, len(chunks), 4000):
        part = chunks[s:s + 4000]
        metas = [chunk_metadata(c[1], 0, {"title": c[2].split("\n")[0], "dates": "2026-12-02",
                                          "sources": "feed", "hash": "h", "abstract": ""},
                                c[2]) for c in part]
        store.replace_chunks([c[1] for c in part], [c[0] for c in part],
                             vectors[s:s + 4000], metas, delete_old=False)
    store.bump_generation(indexed=True)


def chroma_part(m: int, work: Path, url: str | None) -> dict:
    """Writer and reader stores on one index (a server: two data dirs, two clients)."""
    from rag.settings import Settings
    from rag.store import open_store
    from rag.store.cache import build, facets_key
    from rag.text import terms

    def settings(name):
        return Settings(data_dir=work / name, chroma_url=url,
                        _env_file=None)  # type: ignore[call-arg]

    rng = np.random.default_rng(0)
    base, added = synthetic(m, seed=21), synthetic(1000, seed=22)
    writer = open_store(settings("writer"))
    _write(writer, base, rng.standard_normal((len(base), 64)).astype(np.float32))
    reader = writer if url is None else open_store(settings("reader"))
    t = time.perf_counter()
    _must(reader.lexical()).top(terms(QUESTION), 100)
    first_build_s = time.perf_counter() - t
    _write(writer, added, rng.standard_normal((len(added), 64)).astype(np.float32))
    t = time.perf_counter()  # the Chroma writes have ended
    lex = _must(reader.lexical())
    lex.top(terms(QUESTION), 100)
    current_s = time.perf_counter() - t
    assert lex.n_live == m + 1000, lex.n_live
    t = time.perf_counter()
    build(reader.index, work / "full", reader.generation(), facets_key(reader.index))
    full_s = time.perf_counter() - t
    return {"mode": "server, second client" if url else "embedded", "base_chunks": m,
            "added": 1000, "current_after_writes_s": round(current_s, 2),
            "full_rebuild_s": round(full_s, 2), "first_build_s": round(first_build_s, 2),
            "segments": len(lex.segments)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=100_000, help="lexical part: base size")
    ap.add_argument("--chroma-papers", type=int, default=20_000, help="Chroma part: base size")
    ap.add_argument("--port", type=int, default=8731)
    args = ap.parse_args(argv)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    work = Path(tempfile.mkdtemp(prefix="segments-bench-"))
    rows = []
    try:
        rows.append({"part": "lexical only", **lexical_part(args.papers, work / "lex")})
        rows.append({"part": "chroma", **chroma_part(args.chroma_papers, work / "emb", None)})
        from run import start_chroma_server

        proc = start_chroma_server(work / "server", args.port, subprocess.DEVNULL)
        try:
            rows.append({"part": "chroma", **chroma_part(
                args.chroma_papers, work / "srv", f"http://127.0.0.1:{args.port}")})
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for row in rows:
        print(json.dumps(row))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                   "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
