"""Values at the edges (issue 26, item 5): JSON output holds only finite numbers, and a
setting that is not a finite number is refused before anything runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.serialize import answer_to_dict, hit_to_dict
from rag.types import Answer, Hit, StoredPaper


def _strict(text: str):
    """json.loads that refuses Infinity, -Infinity and NaN, as JavaScript's JSON.parse does."""
    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _hit(rank: int, score, relevance) -> Hit:
    paper = StoredPaper(paper_id=f"p{rank}", title=f"Paper {rank}", abstract="Text.",
                        dates=("2024-08-13",), sources=("a.csv",))
    return Hit(rank=rank, paper=paper, score=score, relevance=relevance)


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan"),
                                 np.float64("inf"), np.float32("nan")])
def test_answer_json_never_holds_infinity_or_nan(bad):
    """ABSTRACTA_DENSE_WEIGHT=inf made `ask --json` print "score": Infinity."""
    answer = Answer(question="q", text="t [1]", abstained=False, citations=(),
                    hits=(_hit(1, bad, 0.9), _hit(2, 0.5, bad)), answerer="offline",
                    usage={"total_tokens": 3, "cost": bad}, timings_ms={"search": bad})
    out = _strict(json.dumps(answer_to_dict(answer)))
    assert [s["score"] for s in out["sources"]] == [None, 0.5]
    assert [s["relevance"] for s in out["sources"]] == [0.9, None]
    assert out["usage"] == {"total_tokens": 3, "cost": None}
    assert out["timings_ms"] == {"search": None}
    assert _strict(json.dumps(hit_to_dict(_hit(3, np.float32(0.25), bad))))["score"] == 0.25


def test_ask_json_refuses_an_infinite_weight_in_one_line():
    from reliability_helpers import assert_clean_failure, run_ask

    proc = run_ask("--json", "graph neural networks",
                   env={"ABSTRACTA_DENSE_WEIGHT": "inf", "ABSTRACTA_EMBEDDER": "wordllama"})
    assert "Infinity" not in proc.stdout
    assert_clean_failure(proc, names="ABSTRACTA_DENSE_WEIGHT")
