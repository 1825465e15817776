"""Full small runs of `ask eval` over the bundled index: run folder, --fail-under, --compare,
and the LLM judge against a real local OpenAI-compatible HTTP server."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from helpers import run_ask

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))
from openai_stub import Reply, StubOpenAI  # noqa: E402  (tests/llm: the shared OpenAI stub)

TYPES = {"lookup", "detail", "multi", "followup", "unanswerable"}


def test_run_folder_fail_under_and_compare(tmp_path, bundled_dir, small_dataset, netguard_log):
    runs = tmp_path / "runs"
    base = ["eval", "--dataset", small_dataset, "--data-dir", bundled_dir, "--runs-dir", runs]
    proc = run_ask(*base, "--name", "base", "--fail-under", "hit@5=0.5")
    assert proc.returncode == 0, proc.stderr
    assert "Eval summary (6 questions)" in proc.stdout and "hit@5" in proc.stdout
    assert "━" not in proc.stderr  # no bar drawn into a pipe (a line every 30 s instead)
    folder = runs / "base"
    assert {p.name for p in folder.iterdir()} == {
        "config.json", "per_question.jsonl", "summary.json", "report.md", "metrics_by_type.png"}

    config = json.loads((folder / "config.json").read_text())
    assert config["corpus"]["papers"] == 358 and len(config["corpus"]["fingerprint"]) == 64
    assert config["answerer"] == "offline" and config["retrieval_k"] == 10
    assert config["settings"]["openai_api_key"] is None and config["embedding_model"]
    assert config["code_version"] and config["libraries"]["chromadb"]

    records = {r["id"]: r for r in map(json.loads, (folder / "per_question.jsonl").open())}
    assert list(records) == ["lookup-1", "lookup-2", "detail-1", "multi-1", "followup-1",
                             "unanswerable-1"]
    for r in records.values():
        assert len(r["retrieved"]) == 10 and r["retrieved"][0]["rank"] == 1
        assert r["metrics"]["latency_ms"] > 0 and r["metrics"]["invented_citation_rate"] in (
            None,
            0,
        )
    assert records["lookup-2"]["metrics"]["hit@5"] == 1.0  # matched through gold_ids
    assert records["detail-1"]["retrieved"][0]["gold"] and records["detail-1"]["cited"][0]["gold"]
    # The follow-up was asked after its first turn: the search named the paper.
    assert "LLM Compiler" in records["followup-1"]["standalone_question"]
    assert records["unanswerable-1"]["metrics"]["hit@1"] is None

    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["by_type"]) == TYPES
    hit5 = summary["overall"]["hit@5"]
    assert hit5["n"] == 5 and hit5["value"] == sum(
        r["metrics"]["hit@5"] for r in records.values() if r["type"] != "unanswerable") / 5
    assert hit5["ci"][0] <= hit5["value"] <= hit5["ci"][1]
    assert summary["overall"]["correct_abstention"]["n"] == 1
    assert "tokens_mean" not in summary["overall"]  # offline: no token usage
    md = (folder / "report.md").read_text()
    assert "| hit@5 |" in md and "](metrics_by_type.png)" in md
    assert (folder / "metrics_by_type.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A second run, compared with the first by name, with a floor it cannot reach.
    proc = run_ask(*base, "--name", "next", "--compare", "base", "--fail-under", "hit@1=0",
                   "--fail-under", "hit@5=1.01")
    assert proc.returncode == 3, proc.stderr
    assert "FAILED: hit@5 = " in proc.stderr and "is below 1.01" in proc.stderr
    assert "hit@1" not in proc.stderr.split("FAILED:")[1]
    assert "Compared with" in proc.stdout and "6 shared questions" in proc.stdout
    assert "hit@5 -> miss: 0" in proc.stdout  # same index, same answers: nothing flipped
    assert "## Comparison" in (runs / "next" / "report.md").read_text()

    # Compare by path; an unknown run or metric is a usage error before anything runs.
    proc = run_ask(*base, "--name", "third", "--compare", str(folder), "--k", "3")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((runs / "third" / "config.json").read_text())["k"] == 3
    proc = run_ask(*base, "--compare", "nope", "--fail-under", "hit@5=0")
    assert proc.returncode == 2 and "'nope' is neither a run folder" in proc.stderr
    proc = run_ask(*base, "--fail-under", "hits=0.9")
    assert proc.returncode == 2 and "expected METRIC=VALUE" in proc.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["base", "next", "third"]
    assert not netguard_log.exists()


def test_judge_scores_and_counts_unparsable(bundled_dir, bundled_pipeline, small_dataset):
    from eval import harness, report
    from eval.judge import Judge
    from rag.settings import load_settings

    good = json.dumps({"claims": [
        {"claim": "A", "supported": True, "cited": [1], "citation_supports": True},
        {"claim": "B", "supported": False, "cited": [], "citation_supports": False}]})
    with StubOpenAI() as stub:
        stub.script(good, "I think the answer is fine.", Reply(status=500, message="boom"))
        stub.responder = lambda request: "```json\n" + json.dumps({"claims": [
            {"claim": "C", "supported": True, "cited": [1], "citation_supports": False}]}) + "\n```"
        settings = load_settings(data_dir=bundled_dir, openai_base_url=stub.url,
                                 openai_api_key="sk-test-SECRET", llm_model="stub-model",
                                 llm_retries=0, llm_read_timeout=5)
        questions = harness.load_dataset(small_dataset)
        index = harness.build_gold_index(bundled_pipeline)
        records = harness.run_all(bundled_pipeline, questions, index, k=5, use_llm=False,
                                  judge=Judge(settings))
        first_prompt = stub.chat_requests[0].prompt
        first_request = stub.chat_requests[0].json
    # The judge streams like the answerer, and caps its reply (a local model could ramble on).
    assert first_request["stream"] is True and first_request["max_tokens"] == 1000
    assert first_request["temperature"] == 0
    answered = [r for r in records if not r["abstained"]]
    statuses = [r["judge"]["status"] for r in answered]
    assert statuses[:3] == ["ok", "unparsable", "error"] and set(statuses[3:]) == {"ok"}
    assert all(r["judge"] == {"status": "skipped"} for r in records if r["abstained"])
    assert answered[0]["answer"] in first_prompt  # the judge saw the answer and its sources
    assert answered[0]["retrieved"][0]["title"] in first_prompt

    summary = report.summarize(records, judge_model="stub-model")
    judged = summary["judge"]["stub-model"]
    assert judged["unparsable"] == 1 and judged["errors"] == 1
    assert judged["judged"] == len(answered) - 2
    faith = judged["overall"]["faithfulness"]
    assert faith["n"] == judged["judged"]  # unparsable replies are not scored as zero
    assert faith["value"] == pytest.approx((0.5 + (len(answered) - 3)) / (len(answered) - 2),
                                           abs=1e-5)
    assert judged["overall"]["citation_support"]["value"] == pytest.approx(
        1 / (len(answered) - 2), abs=1e-5)
    assert "faithfulness" not in summary["overall"]
    md = report.markdown(summary, {"name": "j"})
    assert "## LLM judge: stub-model" in md and "unparsable replies: 1" in md


def test_llm_run_on_a_stratified_subset_shows_the_check(tmp_path, bundled_dir, netguard_log):
    """`ask eval --llm --limit 10 --judge` against a local server that behaves like a small
    model on llama.cpp: invented numbers, a bare "[1]", no usage; the judge's server fails."""
    replies = ["GQSA combines quantization with sparsity [1][9]. It is the best method ever "
               "published on the topic.", "[1]"]
    asked: list[str] = []

    def respond(request):
        if request.prompt.startswith("You check answers"):
            return Reply(status=500, message="judge backend down")
        if "Follow-up question:" in request.prompt:
            return "How much faster is it than the baseline?"
        asked.append(request.prompt)
        return Reply(text=replies[len(asked) % 2], usage=False)

    runs = tmp_path / "runs"
    with StubOpenAI() as stub:
        stub.responder = respond
        proc = run_ask("eval", "--llm", "--judge", "--limit", "10", "--data-dir", bundled_dir,
                       "--runs-dir", runs, "--name", "llm",
                       env={"OPENAI_BASE_URL": stub.url, "ABSTRACTA_LLM_RETRIES": "0"},
                       timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = runs / "llm"
    config = json.loads((folder / "config.json").read_text())
    assert config["n_questions"] == 10 and config["limit"] == 10
    records = [json.loads(line) for line in (folder / "per_question.jsonl").open()]
    # Stratified: every type of the test split is there, in proportion (297 questions:
    # 160 lookups, 58 details, 36 unanswerable, 15 multi, 28 follow-ups).
    assert Counter(r["type"] for r in records) == {
        "lookup": 5, "detail": 2, "unanswerable": 1, "multi": 1, "followup": 1}
    llm = [r for r in records if r["answerer"].startswith("llm:")]
    assert llm and all(r["raw_reply"] in replies for r in llm)
    invented = [r for r in llm if r["raw_reply"] == replies[0]]
    bare = [r for r in llm if r["raw_reply"] == "[1]"]
    assert invented and bare
    for r in invented:
        assert r["removed_citations"] == 1 and r["supported"] and "[9]" not in r["answer"]
        assert r["unsupported_sentences"] == ["It is the best method ever published on the "
                                              "topic."]
    assert all(not r["supported"] and r["metrics"]["unsupported"] == 1.0 for r in bare)
    assert all(r["usage"] is None for r in llm)

    summary = json.loads((folder / "summary.json").read_text())
    rate = summary["overall"]["invented_number_rate"]
    assert rate["n"] == 2 * len(invented) + len(bare)  # every [n] the model wrote
    assert rate["value"] == pytest.approx(len(invented) / rate["n"], abs=1e-5)
    answered = [r for r in records if not r["abstained"]]
    assert summary["overall"]["unsupported_rate"]["value"] == pytest.approx(
        sum(not r["supported"] for r in answered) / len(answered), abs=1e-5)
    assert summary["usage_not_reported"] == len(llm) and "tokens_mean" not in summary["overall"]
    judged = summary["judge"][config["judge_model"]]
    assert judged["errors"] == sum(not r["abstained"] for r in records) > 0
    # The terminal table says all this too.
    for row in ("invented_number_rate", "unsupported_rate", "judge:errors "):
        assert row in proc.stdout, proc.stdout
    assert f"usage not reported by the server for {len(llm)}" in proc.stdout.lower()
    assert "HTTP 500" in json.dumps([r["judge"] for r in records])
    assert not netguard_log.exists()


def test_limit_and_types_select_questions(bundled_dir, small_dataset):
    from eval import harness

    questions = harness.load_dataset(small_dataset)  # 2 lookup + 1 of four other types
    assert [q.id for q in harness.select(questions, limit=5)] == [
        "lookup-1", "detail-1", "multi-1", "followup-1", "unanswerable-1"]
    assert [q.type for q in harness.select(questions, types=("lookup", "multi"))] == [
        "lookup", "lookup", "multi"]
    assert [q.id for q in harness.select(questions, types=("lookup",), limit=1)] == ["lookup-1"]
    proc = run_ask("eval", "--dataset", small_dataset, "--types", "lookup,nope",
                   "--data-dir", bundled_dir)
    assert proc.returncode == 2 and "no question of type nope" in proc.stderr
    assert "lookup, multi" in proc.stderr
