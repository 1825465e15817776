"""Dataset parsing, gold-paper resolution, and the ship-check of dev.jsonl."""

from __future__ import annotations

import json
import re

import pytest
from eval_helpers import SMALL, write_jsonl
from helpers import run_ask

from eval.harness import DATASETS, DatasetError, build_gold_index, load_dataset

GOOD = SMALL[0]


@pytest.mark.parametrize("bad, message", [
    ('{"id": "x", "question": "q", "gold_titles": [}', "not valid JSON"),
    ('["a list"]', "expected a JSON object"),
    ('{"id": "x", "gold_titles": []}', "'question'"),
    ('{"id": "x", "question": "q"}', "gold_titles' or 'gold_ids"),
    ('{"id": "x", "question": "q", "gold_titles": "one title"}', "'gold_titles' must be a list"),
    ('{"id": "x", "question": "q", "gold_titles": [], "answer": [3]}', "'answer' must be a list"),
    ('{"id": "x", "question": "q2", "gold_titles": [], "turns": ["q1", "q3"]}',
     "last of 'turns' must equal 'question'"),
    (json.dumps(GOOD), "id 'lookup-1' already used on line 1"),
])
def test_bad_line_is_named(tmp_path, bad, message):
    path = write_jsonl(tmp_path / "set.jsonl", [GOOD, "", bad])
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    assert str(err.value).startswith("set.jsonl:3: ")  # blank line 2 still counts
    assert message in str(err.value)


def test_parses_turns_and_free_text_type(tmp_path):
    row = dict(SMALL[4], type="my own kind")
    (q,) = load_dataset(write_jsonl(tmp_path / "set.jsonl", [row]))
    assert q.type == "my own kind"
    assert q.turns == (row["turns"][0],) and q.question == row["turns"][-1]
    assert q.answerable and q.answer == ("6.7x",)


def test_cli_reports_bad_line_in_one_line(tmp_path):
    path = write_jsonl(tmp_path / "set.jsonl", [GOOD, "{not json"])
    proc = run_ask("eval", "--dataset", path, "--runs-dir", tmp_path / "runs")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "Error: set.jsonl:2: not valid JSON (Expecting property name enclosed in double quotes "
        "at column 2).")
    assert not (tmp_path / "runs").exists()


def test_missing_gold_title_refuses_to_start(tmp_path, bundled_dir):
    rows = [SMALL[2], dict(SMALL[0], id="ghost", gold_titles=["A Paper That Is Not Indexed"])]
    path = write_jsonl(tmp_path / "set.jsonl", rows)
    runs = tmp_path / "runs"
    proc = run_ask("eval", "--dataset", path, "--data-dir", bundled_dir, "--runs-dir", runs)
    assert proc.returncode == 1, proc.stderr
    assert "Gold paper not in the index: ghost: 'A Paper That Is Not Indexed'" in proc.stderr
    assert "--allow-missing" in proc.stderr and "Traceback" not in proc.stderr
    assert not runs.exists()

    proc = run_ask("eval", "--dataset", path, "--data-dir", bundled_dir, "--runs-dir", runs,
                   "--name", "partial", "--allow-missing")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (runs / "partial" / "per_question.jsonl").open()]
    ghost = next(r for r in records if r["id"] == "ghost")
    assert ghost["gold_missing"] == ["A Paper That Is Not Indexed"]
    assert ghost["metrics"]["recall@10"] == 0.0  # a missing gold paper counts as not found
    config = json.loads((runs / "partial" / "config.json").read_text())
    assert config["gold_missing"] == [{"id": "ghost", "gold": "A Paper That Is Not Indexed"}]


@pytest.mark.parametrize("name", ["tune.jsonl", "test.jsonl", "dev.jsonl"])
def test_question_sets_ship_with_their_corpus(bundled_pipeline, name):
    """Every gold title (of every turn) is in the bundled corpus, every expected answer
    string occurs in the title + abstract of one of its gold papers, and every term a near
    miss says is missing occurs in no indexed paper."""
    from rag.identity import normalize_title
    from rag.text import WORD

    questions = load_dataset(DATASETS / name)
    index = build_gold_index(bundled_pipeline)
    papers = {p.paper_id: p for p in bundled_pipeline.papers()}
    corpus_words = {
        w for p in papers.values() for w in WORD.findall(f"{p.title} {p.abstract}".lower())
    }
    assert len(questions) >= 150
    problems = []
    for q in questions:
        texts = []
        turn_titles = [t for turn in q.turn_gold_titles for t in turn]
        for title in (*q.gold_titles, *turn_titles):
            ids = index.by_title.get(normalize_title(title))
            if not ids:
                problems.append(f"{q.id}: gold title not in corpus: {title}")
                continue
            if title in q.gold_titles:
                texts += [f"{papers[i].title} {papers[i].abstract}".casefold() for i in ids]
        for fact in q.answer:
            if texts and not any(fact.casefold() in t for t in texts):
                problems.append(f"{q.id}: answer {fact!r} not in a gold abstract")
        if q.type == "unanswerable" and q.gold_titles:
            problems.append(f"{q.id}: unanswerable with gold titles")
        for term in q.missing:  # a plain one-word term must be in no paper (not phrases)
            if re.fullmatch(r"\w+", term) and term.lower() in corpus_words:
                problems.append(f"{q.id}: 'missing' term {term!r} occurs in the corpus")
    assert problems == []


def test_tune_and_test_do_not_share_a_question():
    """The split is fixed and disjoint: fitting on tune never sees a test question."""
    tune = load_dataset(DATASETS / "tune.jsonl")
    test = load_dataset(DATASETS / "test.jsonl")
    assert not {q.id for q in tune} & {q.id for q in test}
    assert not {q.question for q in tune} & {q.question for q in test}
    assert len(test) >= 150 and sum(q.type == "unanswerable" for q in test) >= 30
    assert sum(q.type == "followup" and q.switch for q in test) >= 10


def test_parses_subtype_switch_turn_gold_and_missing(tmp_path):
    rows = [
        {
            "id": "f1",
            "type": "followup",
            "question": "And OmniACT?",
            "turns": ["A?", "And OmniACT?"],
            "gold_titles": ["B"],
            "answer": [],
            "turn_gold_titles": [["A"], ["B"]],
            "switch": True,
        },
        {"id": "l1", "type": "lookup", "subtype": "para", "question": "q", "gold_titles": ["T"]},
        {
            "id": "u1",
            "type": "unanswerable",
            "question": "PipeDream?",
            "gold_titles": [],
            "missing": ["PipeDream", "weight stashing"],
        },
    ]
    f1, l1, u1 = load_dataset(write_jsonl(tmp_path / "set.jsonl", rows))
    assert f1.switch and f1.turn_gold_titles == (("A",), ("B",))
    assert l1.subtype == "para" and not l1.switch and l1.gold_titles == ("T",)
    assert u1.missing == ("PipeDream", "weight stashing") and not u1.answerable


@pytest.mark.parametrize("extra, message", [
    ({"subtype": 3}, "'subtype' must be a string"),
    ({"switch": "yes"}, "'switch' must be true or false"),
    ({"turn_gold_titles": ["A"]}, "'turn_gold_titles' must be a list of lists"),
    ({"turn_gold_titles": [["A"]]}, "one list per turn (2), not 1"),
    ({"missing": "PipeDream"}, "'missing' must be a list"),
])
def test_bad_new_fields_are_named(tmp_path, extra, message):
    row = {"id": "f1", "type": "followup", "question": "q2", "turns": ["q1", "q2"],
           "gold_titles": ["A"], **extra}
    with pytest.raises(DatasetError) as err:
        load_dataset(write_jsonl(tmp_path / "set.jsonl", [row]))
    assert message in str(err.value) and str(err.value).startswith("set.jsonl:1: ")


@pytest.mark.parametrize("name", ["tune.jsonl", "test.jsonl"])
def test_the_tune_and_test_splits_parse(name):
    questions = load_dataset(DATASETS / name)
    assert {q.type for q in questions} >= {"lookup", "detail", "multi", "followup",
                                           "unanswerable"}
    assert {q.subtype for q in questions if q.type == "lookup"} == {"para", "kw", "gap"}
    assert {q.subtype for q in questions if q.type == "detail"} == {"", "gap", "two_part"}
    assert any(q.switch for q in questions)
