"""A paper asked for by its exact title comes first, in every fresh process.

Dense search alone did not promise it: HNSW is approximate, and the part of the vector
index not yet saved was rebuilt by each process in a thread-dependent order, so a paper
found in one process was missed in the next. Ingest now saves the vector index whole
(rag/store/chroma.py, ChromaIndex.flush), so every process searches the same graph.
"""

from __future__ import annotations

import json

import pytest
from reliability_helpers import run_ask
from synthetic import papers, write_csv

pytestmark = pytest.mark.slow


def test_twenty_new_papers_by_exact_title_five_times_each(tmp_path):
    env = {"ABSTRACTA_EMBEDDER": "wordllama", "ABSTRACTA_DATA_DIR": str(tmp_path / "data")}
    assert run_ask("ingest", "--bundled", env=env, timeout=600).returncode == 0
    rows = papers(20, seed=2026)
    done = run_ask("ingest", write_csv(tmp_path / "new.csv", rows), env=env, timeout=600)
    assert done.returncode == 0 and "20 added" in done.stdout, done.stderr[-2000:]
    misses = []
    for _ in range(5):
        for row in rows:
            res = run_ask("search", "--json", row["title"], env=env)
            assert res.returncode == 0, res.stderr[-2000:]
            hits = json.loads(res.stdout)
            if not hits or hits[0]["title"] != row["title"]:
                misses.append((row["title"], [h["title"] for h in hits[:3]]))
    assert not misses, f"{len(misses)} of 100 not at rank 1: {misses[:5]}"
