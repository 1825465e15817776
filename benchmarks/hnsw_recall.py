"""Own-vector recall of the dense index: query every chunk with its own vector.

A chunk that does not come back in the top ``k`` for its own vector is one dense search
cannot find, whatever the question. Brute force tells the HNSW misses apart from chunks
that cannot come back (``k`` or more vectors at least as close).

    python benchmarks/make_corpus.py 20000 -o /tmp/p20k.jsonl --seed 7
    ABSTRACTA_EMBEDDER=wordllama ABSTRACTA_DATA_DIR=/tmp/i20k ask ingest --bundled /tmp/p20k.jsonl
    python benchmarks/hnsw_recall.py /tmp/i20k --ef 100 200 400
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def measure(data_dir: Path, k: int) -> str:
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(data_dir / "chroma"),
                                       settings=Settings(anonymized_telemetry=False))
    col = client.get_collection("abstracta_chunks", embedding_function=None)
    res = col.get(include=["embeddings"])
    ids, vecs = res["ids"], np.asarray(res["embeddings"], dtype=np.float32)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    impossible = 0
    for start in range(0, len(ids), 2000):
        sims = unit[start:start + 2000] @ unit.T
        own = sims[np.arange(len(sims)), np.arange(start, start + len(sims))]
        impossible += int(((sims > own[:, None] + 1e-6).sum(1) >= k).sum())
    misses = 0
    for start in range(0, len(ids), 1000):
        got = col.query(query_embeddings=vecs[start:start + 1000], n_results=k, include=[])
        misses += sum(c not in g for c, g in zip(ids[start:start + 1000], got["ids"], strict=False))
    ef = col.configuration["hnsw"]["ef_search"]
    return (f"ef_search={ef} k={k}: {misses} of {len(ids)} chunks not found by their own "
            f"vector (recall {1 - misses / len(ids):.4f}; {impossible} impossible)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--ef", type=int, nargs="*", help="set ef_search first (changes the index)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(measure(args.data_dir, args.k))
        return
    for ef in args.ef or [None]:
        if ef is not None:
            import chromadb
            from chromadb.config import Settings

            client = chromadb.PersistentClient(path=str(args.data_dir / "chroma"),
                                               settings=Settings(anonymized_telemetry=False))
            client.get_collection("abstracta_chunks", embedding_function=None).modify(
                configuration={"hnsw": {"ef_search": ef}})
        # A fresh process per measurement: each one loads the index as a user's `ask` does.
        subprocess.run([sys.executable, __file__, str(args.data_dir), "--k", str(args.k),
                        "--one"], check=True)


if __name__ == "__main__":
    main()
