"""benchmarks/beir.py on a tiny BEIR-format folder: every system scored, judged queries only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = Path(__file__).parent / "tiny_beir"


def _beir(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "beir.py"), *args],
                          capture_output=True, text=True, timeout=600)


def test_beir_script_scores_abstracta_dense_and_bm25s_side_by_side():
    res = _beir(str(TINY), "--embedder", "wordllama")
    assert res.returncode == 0, res.stderr[-2000:]
    table, _, tail = res.stdout.partition("\n\n")
    rows = {}
    for line in table.splitlines()[1:]:
        name, *nums = line.rsplit(None, 4)
        rows[name.strip()] = [float(x) for x in nums]
    # Every judged query is answerable: the abstention rate of the offline answerer.
    m = re.search(r"abstained on (\d+) of 4 answerable queries .*ranked first: (\d+) of (\d+)",
                  tail)
    assert m and int(m.group(2)) <= int(m.group(1)) <= 4 and int(m.group(3)) == 4, tail
    assert set(rows) == {"Abstracta", "dense only", "Abstracta BM25", "bm25s (stemmed)"}
    for ndcg, recall, mrr, queries in rows.values():
        assert queries == 4  # q5 has no judgments
        assert 0.0 <= ndcg <= 1.0 and 0.0 <= recall <= 1.0 and 0.0 <= mrr <= 1.0
    # The queries are easy: each system puts a relevant document first for every one.
    assert rows["Abstracta"][2] == 1.0 and rows["bm25s (stemmed)"][2] == 1.0
    assert rows["Abstracta"][0] >= 0.9
    # Our stemmed BM25 and bm25s score the same documents the same way.
    assert rows["Abstracta BM25"][:3] == rows["bm25s (stemmed)"][:3]
    assert "1 without text left out" in res.stderr


def test_graded_ndcg_recall_and_mrr_by_hand():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import beir

    rels = {"b": 2, "c": 1, "z": 1}
    # DCG = 0/1 + 2/log2(3) + 1/2 = 1.7619; ideal 2/1 + 1/log2(3) + 1/2 = 3.1309
    assert abs(beir.ndcg_at(["a", "b", "c"], rels) - 1.7619 / 3.1309) < 1e-4
    assert beir.recall_at(["a", "b", "c"], rels) == 2 / 3
    assert beir.mrr_at(["a", "b", "c"], rels) == 0.5
    assert beir.mrr_at(["a"], rels) == 0.0


def test_a_folder_that_is_not_beir_is_a_one_line_error(tmp_path):
    res = _beir(str(tmp_path))
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "corpus.jsonl is missing" in res.stderr
