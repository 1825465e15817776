"""Odd questions: a one-line refusal or a sensible answer, never a traceback.

"Sensible" means what a user relies on: either the answer abstains (the papers
do not cover it), or it cites papers and every [n] in its text is one of its
citations. Where the odd question still contains a real question (noise, emoji,
a 100 KB paste that starts with it), the right paper must still come first.
"""

from __future__ import annotations

import re

import pytest
from reliability_helpers import (
    GOOD_QUESTION,
    GOOD_TITLE,
    answer_json,
    assert_clean_failure,
    run_ask,
)

from rag.errors import QuestionError

REFUSED = {
    "empty": "",
    "whitespace": "   \n\t  \r\n ",
    "punctuation": "?!... ;:-- ¿¡ «» …",
    "control": "\x00\x01\x07\x1b\x08\x7f\x9b",
    "emoji-only": "🤖🔥🚀 ❓",
}

# (question, whether the answer must cite the GQSA paper first)
ANSWERED = {
    "long-100kb": ((GOOD_QUESTION + " ") * 1600, True),
    "long-noise": ("lorem ipsum dolor sit amet " * 4000, False),
    "chinese": ("哪篇论文结合了分组量化和结构化稀疏？", False),
    "arabic": ("ما هي الورقة التي تجمع بين التكميم والتشتت المنظم؟", False),
    "german": ("Welches Paper kombiniert Gruppenquantisierung mit strukturierter Sparsity?", False),
    "control-mixed": ("Which paper\x00 combines group\x1b[31m quantization\x07 with "
                      + "structured\u200b sparsity?\x7f", True),
    "emoji-mixed": ("🤖🔥 " + GOOD_QUESTION + " 🚀", True),
    "bidi": ("\u202e" + GOOD_QUESTION + "\u202c", True),
    # Everything at once, 100 KB: emoji, another script, accents and control bytes.
    "long-mixed": (("🤖 " + GOOD_QUESTION + " 中文 ünïcödé \x07 ") * 1100, True),
}


def assert_sensible(text: str, abstained: bool, cited: list[tuple[int, str]], must_cite: bool):
    """Abstained, or cited with every [n] resolvable; the known paper first when expected."""
    assert text.strip()
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    if must_cite:
        assert not abstained, text
        assert cited and cited[0][1] == GOOD_TITLE, cited
    if not abstained:
        assert cited, text
        assert numbers and numbers <= {n for n, _ in cited}, (numbers, cited)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_pipeline_refuses_questions_without_words(bundled_pipeline, name):
    with pytest.raises(QuestionError) as err:
        bundled_pipeline.answer(REFUSED[name])
    message = str(err.value)
    assert "\n" not in message and "question" in message.lower()


@pytest.mark.parametrize("name", sorted(ANSWERED))
def test_pipeline_answers_odd_questions_sensibly(bundled_pipeline, name):
    question, must_cite = ANSWERED[name]
    answer = bundled_pipeline.answer(question)
    assert_sensible(answer.text, answer.abstained, [(c.n, c.title) for c in answer.citations],
                    must_cite)
    assert len(answer.question) <= 2000  # a pasted document is cut, not echoed whole


def test_search_accepts_odd_queries(bundled_pipeline):
    """`ask search` with noise around the words still ranks the right paper first."""
    hits = bundled_pipeline.search(ANSWERED["control-mixed"][0])
    assert hits and hits[0].paper.title == GOOD_TITLE


# The CLI: the same rules through a real `ask` process (few cases: each run costs seconds;
# argv cannot carry NUL, so the control bytes are others).
def test_cli_refuses_a_question_without_words(bundled_dir):
    proc = run_ask("  \t\x1b\x07 ?!... ;:-- ", "--data-dir", str(bundled_dir))
    line = assert_clean_failure(proc, exit_code=2)
    assert "question" in line.lower()


def test_cli_answers_a_100kb_mixed_script_question_as_json(bundled_dir):
    question, must_cite = ANSWERED["long-mixed"]
    assert len(question.encode()) > 100_000
    data = answer_json(run_ask("--json", question, "--data-dir", str(bundled_dir)))
    assert_sensible(data["answer"], data["abstained"],
                    [(c["n"], c["title"]) for c in data["citations"]], must_cite)


def test_cli_prints_an_answer_to_a_chinese_question(bundled_dir):
    """The plain-text output (answer, then the closest papers) with non-ASCII all the way."""
    proc = run_ask(ANSWERED["chinese"][0], "--data-dir", str(bundled_dir))
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "papers" in proc.stdout.lower() and ("Closest papers" in proc.stdout
                                                or "Sources" in proc.stdout), proc.stdout


# Chinese, Japanese and Korean questions written without spaces around a Latin name
# (issue 26): before the fix "哪篇论文提出了GPipe" was one word, and the answer abstained.
CJK_WITH_NAMES = {
    "chinese": "哪篇论文提出了GPipe",
    "japanese": "GPipeを提案した論文はどれですか",
    "korean": "GPipe를제안한논문은",
}


@pytest.mark.parametrize("name", sorted(CJK_WITH_NAMES))
def test_a_latin_name_in_a_cjk_question_is_found(bundled_pipeline, name):
    answer = bundled_pipeline.answer(CJK_WITH_NAMES[name])
    assert not answer.abstained, answer.text
    assert answer.citations[0].title.startswith("GPipe:"), answer.citations
