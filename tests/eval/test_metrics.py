"""Metric functions on hand-computed cases, and a cross-check against trec_eval."""

from __future__ import annotations

import math

import pytest

from eval import metrics as M
from eval import report

# One question, gold {a, c}; the run ranks b, a, x, c (a repeated: counted at rank 2 only).
RANKED = ["b", "a", "a", "x", "c"]
GOLD = {"a", "c"}


def test_retrieval_hand_computed():
    m = M.retrieval_metrics(RANKED, GOLD)
    assert m["hit@1"] == 0.0
    assert m["hit@5"] == 1.0
    assert m["recall@5"] == 1.0  # deduped: b, a, x, c -> both gold papers in the top 5
    assert m["mrr@10"] == 0.5
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert m["ndcg@10"] == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert M.recall_at(RANKED, GOLD, 2) == 0.5
    assert M.mrr_at(["x", "y"], {"a"}, 10) == 0.0


def test_unanswerable_has_no_retrieval_scores():
    assert set(M.retrieval_metrics(["a"], set()).values()) == {None}


def test_retrieval_agrees_with_trec_eval():
    """Independent implementation: pytrec_eval (trec_eval) on three questions."""
    import pytrec_eval

    runs = {"q1": ["b", "a", "x", "c", "d"], "q2": ["y", "z"] + [f"n{i}" for i in range(12)],
            "q3": [f"n{i}" for i in range(8)] + ["g1", "g2", "g3"]}
    qrels = {"q1": {"a": 1, "c": 1}, "q2": {"z": 1}, "q3": {"g1": 1, "g2": 1, "g3": 1}}
    # trec_eval ranks by score; the k-cut of MRR is applied by passing only the top 10.
    trec_run = {q: {d: float(100 - i) for i, d in enumerate(docs[:10])} for q, docs in runs.items()}
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"success.1,5", "recall.5,10", "recip_rank",
                                                "ndcg_cut.10"})
    ref = ev.evaluate(trec_run)
    for q, docs in runs.items():
        ours = M.retrieval_metrics(docs, set(qrels[q]))
        assert ours["hit@1"] == pytest.approx(ref[q]["success_1"])
        assert ours["hit@5"] == pytest.approx(ref[q]["success_5"])
        assert ours["recall@5"] == pytest.approx(ref[q]["recall_5"])
        assert ours["recall@10"] == pytest.approx(ref[q]["recall_10"])
        assert ours["mrr@10"] == pytest.approx(ref[q]["recip_rank"])
        assert ours["ndcg@10"] == pytest.approx(ref[q]["ndcg_cut_10"])
    assert ref["q3"]["recall_10"] == pytest.approx(2 / 3)  # the case is not trivial


def test_citations():
    m = M.citation_metrics(["a", "b", "z"], gold={"a", "c"}, sources={"a", "b", "c"})
    assert m["citation_precision"] == pytest.approx(1 / 3)
    assert m["citation_recall"] == 0.5
    assert m["invented_citation_rate"] == pytest.approx(1 / 3)  # z was never retrieved
    none = M.citation_metrics([], gold={"a"}, sources={"a"})
    assert none["citation_precision"] is None and none["citation_recall"] == 0.0
    assert none["invented_citation_rate"] is None


def test_abstention_litqa2_style():
    right = M.abstention_metrics(["b", "a"], {"a"}, abstained=False)
    assert right["correct"] == 1.0 and right["top_citation_correct"] == 0.0
    assert right["false_abstention"] == 0.0 and right["correct_abstention"] is None
    missed = M.abstention_metrics([], {"a"}, abstained=True)
    assert missed["correct"] == 0.0 and missed["answered"] == 0.0
    assert missed["false_abstention"] == 1.0
    unans = M.abstention_metrics(["a"], set(), abstained=False)
    assert unans["correct"] == 0.0 and unans["correct_abstention"] == 0.0
    assert unans["false_abstention"] is None


def test_accuracy_and_precision_aggregate_the_litqa2_way():
    # 4 questions: correct, wrong answer, abstained (answerable), answered unanswerable.
    cases = [(["a"], {"a"}, False), (["b"], {"a"}, False), ([], {"a"}, True), (["c"], set(), False)]
    records = [{"id": str(i), "type": "t",
                "metrics": M.abstention_metrics(c, g, a)} for i, (c, g, a) in enumerate(cases)]
    summary = report.summarize(records)
    assert summary["overall"]["accuracy"]["value"] == 0.25  # 1 correct / 4
    assert summary["overall"]["precision"]["value"] == pytest.approx(
        1 / 3, abs=1e-6
    )  # 1/3 answered
    assert summary["overall"]["precision"]["n"] == 3


def test_key_facts_normalized():
    assert M.contains_all("It is 3.7X   faster\non GPUs", ["3.7x faster on", "GPUs"]) == 1.0
    assert M.contains_all("It is 3.7x faster", ["3.7x", "TPU"]) == 0.0
    assert M.contains_all("anything", []) is None
    assert M.key_facts("closest papers: MPIrigen ...", ["MPIrigen"], abstained=True) == 0.0
    assert M.word_count(" two  words ") == 2


def test_bootstrap_interval_and_percentiles():
    records = [{"id": str(i), "type": "t", "metrics": {"hit@1": float(i % 2), "latency_ms": i}}
               for i in range(40)]
    stats = report.metric_stats(records, report.SPEC_BY_NAME["hit@1"])
    assert stats["value"] == 0.5 and stats["n"] == 40
    lo, hi = stats["ci"]
    assert 0.25 < lo < 0.5 < hi < 0.75
    p95 = report.metric_stats(records, report.SPEC_BY_NAME["latency_ms_p95"])["value"]
    assert p95 == pytest.approx(M.percentile(list(range(40)), 95)) == pytest.approx(37.05)


def test_compare_flags_a_real_drop_and_not_noise():
    def rec(i, hit):
        return {"id": str(i), "type": "t", "abstained": False, "metrics": {"hit@5": hit}}

    old = [rec(i, 1.0) for i in range(40)]
    worse = [rec(i, 0.0 if i < 20 else 1.0) for i in range(40)]
    result = report.compare(old, worse)
    row = next(r for r in result["metrics"] if r["metric"] == "hit@5")
    assert row["delta"] == -0.5 and row["p_value"] < 0.01 and row["better"] is False
    assert result["flips"]["hit_to_miss"] == [str(i) for i in range(20)]
    same = report.compare(old, old)
    assert next(r for r in same["metrics"] if r["metric"] == "hit@5")["p_value"] == 1.0


def _record(qid, qtype, metrics, cited=(), retrieved=(), abstained=False, **extra):
    return {"id": qid, "type": qtype, "metrics": metrics, "abstained": abstained,
            "cited": [{"gold": g} for g in cited], "retrieved": [{"gold": g} for g in retrieved],
            **extra}


def test_bar_metrics_by_subtype_and_followup_switch():
    records = [
        _record("p1", "lookup", {"hit@1": 1.0, "hit@5": 1.0, "false_abstention": 0.0}),
        _record("p2", "lookup", {"hit@1": 0.0, "hit@5": 1.0, "false_abstention": 1.0},
                abstained=True),
        _record("k1", "lookup", {"hit@1": 1.0, "hit@5": 1.0, "false_abstention": 0.0},
                subtype="kw"),
        _record("m1", "multi", {"recall@10": 0.5, "false_abstention": 0.0}),
        _record("u1", "unanswerable", {"correct_abstention": 1.0}, abstained=True),
        _record("u2", "unanswerable", {"correct_abstention": 0.0, "invented_citation_rate": 0.0},
                cited=[False]),
        # Switch follow-ups: the first citation decides; without citations the first hit;
        # an abstention is not an answer from the new topic.
        _record("f1", "followup", {"key_facts": 1.0}, cited=[True, False], switch=True),
        _record("f2", "followup", {"key_facts": 0.0}, cited=[], retrieved=[False, True],
                switch=True),
        _record("f3", "followup", {"key_facts": 0.0}, abstained=True, switch=True),
        _record("f4", "followup", {"key_facts": 1.0}, cited=[False]),  # no switch
    ]
    info = {"p1": {"subtype": "para"}, "p2": {"subtype": "para"}}
    bars = M.bar_metrics(records, info)
    assert bars["lookup_para_hit@1"] == {"value": 0.5, "n": 2}
    assert bars["lookup_para_hit@5"] == {"value": 1.0, "n": 2}
    assert bars["lookup_kw_hit@1"] == {"value": 1.0, "n": 1}
    assert bars["multi_recall@10"] == {"value": 0.5, "n": 1}
    assert bars["false_abstention"] == {"value": 0.25, "n": 4}
    assert bars["unanswerable_abstention"] == {"value": 0.5, "n": 2}
    assert bars["followup_switch_new_topic"]["value"] == pytest.approx(1 / 3)
    assert bars["followup_key_facts"] == {"value": 0.5, "n": 4}
    assert bars["invented_citation_rate"] == {"value": 0.0, "n": 1}
    assert M.meets_bar("lookup_para_hit@1", 0.85) and not M.meets_bar("false_abstention", 0.05)
    assert M.meets_bar("multi_recall@10", None) is None
