"""The `ask` CLI as a user runs it: real subprocesses, real index."""

from __future__ import annotations

import json

import pytest
from helpers import run_ask
from rag_helpers import BUNDLED_PAPERS, index_snapshot, one_line, write

GQSA_Q = (
    "Which paper combines group quantization with structured sparsity to speed up LLM inference?"
)


def _no_traceback(res) -> None:
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout


def test_help_exits_zero():
    res = run_ask("--help")
    assert res.returncode == 0 and "ingest" in res.stdout and "search" in res.stdout
    # The default command's options are listed too (ask "question" takes them).
    own = res.stdout.split('Options of ask "QUESTION":')[1].split("Commands:")[0]
    for option in ("--json", "--since", "--source", "--top-k", "--llm / --offline", "--data-dir"):
        assert option in own, res.stdout
    bare = run_ask()
    assert bare.returncode == 0 and bare.stdout == res.stdout


def test_options_before_the_question_go_to_the_default_command(bundled_dir):
    res = run_ask("-k", "2", "--since", "Aug 1", "--json", GQSA_Q,
                  env={"ABSTRACTA_DATA_DIR": str(bundled_dir)})
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["question"] == GQSA_Q and len(out["sources"]) == 2
    assert out["citations"][0]["title"].startswith("GQSA")


def test_first_question_on_an_empty_data_dir_ingests_the_bundled_corpus(tmp_path, netguard_log):
    env = {"ABSTRACTA_DATA_DIR": str(tmp_path / "fresh"), "ABSTRACTA_EMBEDDER": "wordllama"}
    res = run_ask("GPipe pipeline parallelism for giant neural networks", env=env)
    assert res.returncode == 0, res.stderr
    assert "No papers indexed yet: ingesting the bundled sample corpus" in res.stderr
    assert f"{BUNDLED_PAPERS} added" in res.stderr
    assert "GPipe" in res.stdout and "[1]" in res.stdout and "Sources" in res.stdout
    again = run_ask("stats", env=env)
    assert f"Papers:          {BUNDLED_PAPERS}" in again.stdout
    assert not netguard_log.exists()


def test_json_output_has_the_documented_keys(bundled_dir):
    res = run_ask("--json", GQSA_Q, env={"ABSTRACTA_DATA_DIR": str(bundled_dir)})
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert {"question", "answer", "abstained", "citations", "sources", "timings_ms"} <= set(out)
    assert out["question"] == GQSA_Q and out["abstained"] is False
    assert out["citations"] and all({"n", "paper_id", "title"} <= set(c) for c in out["citations"])
    assert len(out["sources"]) == 5
    for s in out["sources"]:
        assert {"rank", "paper_id", "title", "score", "date", "source"} <= set(s)
    assert [s["rank"] for s in out["sources"]] == [1, 2, 3, 4, 5]
    source_ids = {s["paper_id"] for s in out["sources"]}
    assert all(c["paper_id"] in source_ids for c in out["citations"])
    assert out["citations"][0]["title"].startswith("GQSA") and "[1]" in out["answer"]
    assert out["sources"][0]["date"] == "--08-13"
    assert out["sources"][0]["source"] == "000_b88a07071653e565.txt"
    assert out["timings_ms"]["total"] > 0


def test_off_topic_question_abstains_in_json(bundled_dir):
    res = run_ask("--json", "What is the boiling point of water at sea level?",
                  env={"ABSTRACTA_DATA_DIR": str(bundled_dir)})
    out = json.loads(res.stdout)
    assert out["abstained"] is True and out["citations"] == []
    assert out["sources"][0]["title"] in out["answer"]


def test_stats_shows_the_bundled_papers(bundled_dir):
    res = run_ask("stats", env={"ABSTRACTA_DATA_DIR": str(bundled_dir)})
    assert res.returncode == 0, res.stderr
    assert f"Papers:          {BUNDLED_PAPERS}" in res.stdout
    assert "all-MiniLM-L6-v2-onnx-int8" in res.stdout and "Aug 13" in res.stdout


BAD_INPUTS = {
    "missing.txt": None,
    "empty.txt": "",
    "binary.csv": bytes(range(256)) * 8,
    "notes.txt": "Dear diary,\n\nnothing to see here.\n\nThe end.\n",
}


def test_failed_ingest_reports_one_line_and_leaves_the_index_unchanged(bundled_copy, tmp_path):
    _, data = bundled_copy
    before = index_snapshot(data)
    env = {"ABSTRACTA_DATA_DIR": str(data)}
    for name, content in BAD_INPUTS.items():
        path = tmp_path / "in" / name
        if content is not None:
            write(path, content)
        res = run_ask("ingest", str(path), env=env)
        assert res.returncode != 0, name
        _no_traceback(res)
        errors = one_line(res.stderr)
        assert len(errors) == 1 and name in errors[0], res.stderr
    after = index_snapshot(data)
    assert after == before


def test_ingest_rebuild_replaces_the_index(bundled_copy, tmp_path):
    _, data = bundled_copy
    path = write(
        tmp_path / "mine.csv",
        "title,abstract,id\nQuibblefrost Sketches,We introduce "
        "quibblefrost sketches that count distinct events in constant memory.,2501.00042v2\n",
    )
    env = {"ABSTRACTA_DATA_DIR": str(data)}
    res = run_ask("ingest", "--rebuild", str(path), env=env)
    assert res.returncode == 0, res.stderr
    assert "1 added" in res.stdout and "Index: 1 papers" in res.stdout
    found = run_ask("search", "--json", "quibblefrost", env=env)
    assert json.loads(found.stdout)[0]["paper_id"] == "2501.00042"


def test_query_with_another_embedder_than_the_index_is_refused(wordllama_dir):
    res = run_ask("group quantization", env={"ABSTRACTA_DATA_DIR": str(wordllama_dir)})
    assert res.returncode != 0
    _no_traceback(res)
    errors = one_line(res.stderr)
    assert len(errors) == 1 and "wordllama" in errors[0] and "ask ingest --rebuild" in errors[0]


def test_unknown_setting_is_a_clear_error(bundled_dir):
    res = run_ask("stats", env={"ABSTRACTA_DATA_DIR": str(bundled_dir), "ABSTRACTA_FOO": "1"})
    assert res.returncode == 2
    _no_traceback(res)
    assert one_line(res.stderr) == [
        "Error: Unknown setting ABSTRACTA_FOO; see .env.example for the ABSTRACTA_* variables."]


def test_bad_setting_value_is_a_clear_error(bundled_dir):
    res = run_ask("stats", env={"ABSTRACTA_DATA_DIR": str(bundled_dir), "ABSTRACTA_TOP_K": "lots"})
    assert res.returncode == 2
    _no_traceback(res)
    errors = one_line(res.stderr)
    assert len(errors) == 1 and "ABSTRACTA_TOP_K" in errors[0]


@pytest.mark.parametrize("command", [("stats",), ("a question",)])
def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path, command):
    blocker = write(tmp_path / "data-file", "not a folder")
    res = run_ask(*command, env={"ABSTRACTA_DATA_DIR": str(blocker)})
    assert res.returncode != 0
    _no_traceback(res)
    errors = one_line(res.stderr)
    assert len(errors) == 1 and str(blocker) in errors[0]


@pytest.mark.parametrize("question", ["", "   ", "?!", "..."])
def test_empty_or_punctuation_question_is_a_clear_error(bundled_dir, question):
    res = run_ask(question, env={"ABSTRACTA_DATA_DIR": str(bundled_dir)})
    assert res.returncode == 2
    _no_traceback(res)
    assert one_line(res.stderr) == [
        "Error: The question is empty; ask something about the indexed papers."]


def test_empty_question_on_a_fresh_data_dir_is_refused_before_indexing(tmp_path):
    # A first use indexes the bundled corpus; a question with no words is refused first,
    # and nothing is indexed (nor the data dir made) for it.
    data = tmp_path / "fresh"
    res = run_ask("?", env={"ABSTRACTA_DATA_DIR": str(data), "ABSTRACTA_EMBEDDER": "wordllama"})
    assert res.returncode == 2
    _no_traceback(res)
    assert one_line(res.stderr) == [
        "Error: The question is empty; ask something about the indexed papers."]
    assert "Indexing" not in res.stderr + res.stdout and not (data / "chroma.sqlite3").exists()


def test_faces_come_in_as_commands_of_ask():
    """`ask ui` and `ask eval` live in ui/ and eval/ and are registered as entry points."""
    listed = run_ask("--help").stdout.split("Commands:")[1]
    assert "ui         Open the browser chat (http://127.0.0.1:7860)." in listed
    assert "eval       Score Abstracta on a question set" in listed
    for name in ("ui", "eval"):
        res = run_ask(name, "--help")
        assert res.returncode == 0 and res.stdout.startswith(f"Usage: ask {name} [OPTIONS]")
    res = run_ask("eval", "--no-such-option")
    assert res.returncode == 2 and "Usage: ask eval [OPTIONS]" in res.stderr


def test_a_plugin_that_does_not_load_is_one_line(tmp_path):
    """A package registered a command whose module is gone: `ask --help` still works and
    lists it; running it says so in one line (exit 1), not a traceback."""
    dist = tmp_path / "ghost-1.0.dist-info"
    write(dist / "METADATA", "Metadata-Version: 2.1\nName: ghost\nVersion: 1.0\n")
    write(dist / "entry_points.txt", "[abstracta.commands]\nfeed = ghost_feed.cli:command\n")
    env = {"PYTHONPATH": str(tmp_path)}
    helped = run_ask("--help", env=env)
    assert helped.returncode == 0 and "feed" in helped.stdout.split("Commands:")[1]
    res = run_ask("feed", "--since", "today", env=env)
    assert res.returncode == 1
    _no_traceback(res)
    assert res.stderr.strip().splitlines() == [
        "Error: `ask feed` is not available: its plugin ghost_feed.cli:command did not load "
        "(ModuleNotFoundError: No module named 'ghost_feed'). Reinstall the package that "
        "provides it."]
