"""The offline answerer and the citation check."""

from __future__ import annotations

import re

import pytest

from rag.answer import answer_offline, check_citations, split_sentences
from rag.types import Hit, StoredPaper

CITE = re.compile(r"\[(\d+)\]")

QUESTIONS = [
    "Which paper combines group quantization with structured sparsity to speed up LLM inference?",
    "How does GPipe scale giant neural networks with pipeline parallelism?",
    "Which model generates MPI code for parallel programs?",
]


def _hit(n: int, title: str = "", relevance: float = 0.9) -> Hit:
    paper = StoredPaper(f"p{n}", title or f"Paper {n}", "An abstract. It has sentences.", ("--08-13",),
                        ("a.txt",))
    return Hit(rank=n, paper=paper, score=1.0 / n, relevance=relevance)


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_sentence_is_cited_and_citations_map_to_retrieved_papers(bundled_pipeline, question):
    ans = bundled_pipeline.answer(question)
    assert not ans.abstained and ans.supported and ans.answerer == "offline"
    for paragraph in ans.text.split("\n"):
        for sentence in split_sentences(paragraph):
            assert CITE.search(sentence), f"uncited sentence: {sentence!r}"
    hit_ids = [h.paper.paper_id for h in ans.hits]
    assert [c.n for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    assert {int(n) for n in CITE.findall(ans.text)} == {c.n for c in ans.citations}
    for c in ans.citations:
        assert c.paper_id in hit_ids
        assert c.title == next(h.paper.title for h in ans.hits if h.paper.paper_id == c.paper_id)
    assert ans.citations[0].paper_id == hit_ids[0]
    assert set(ans.timings_ms) >= {"retrieve", "answer", "total"}


def test_first_answer_names_the_right_paper(bundled_pipeline):
    ans = bundled_pipeline.answer(QUESTIONS[0])
    assert ans.citations[0].title.startswith("GQSA")
    assert ans.text.startswith('"GQSA') and "[1]" in ans.text


@pytest.mark.parametrize("question", [
    "What is the boiling point of water at sea level?",
    "Who won the football world cup in 1998?",
])
def test_off_topic_question_abstains_and_names_the_closest_papers(bundled_pipeline, question):
    ans = bundled_pipeline.answer(question)
    assert ans.abstained and ans.citations == ()
    assert "don't cover" in ans.text
    assert ans.hits and all(f'"{h.paper.title}"' in ans.text for h in ans.hits[:3])
    assert not CITE.search(ans.text)


def test_offline_answerer_abstains_with_no_hits():
    ans = answer_offline("anything", [], 0.5)
    assert ans.abstained and "no paper matched" in ans.text


def test_check_citations_drops_unknown_numbers_and_renumbers_by_first_use():
    hits = [_hit(1), _hit(2), _hit(3)]
    checked = check_citations("A is true [3]. B follows [7][1]. C [0] too [2, 9].", hits)
    assert checked.text == "A is true [1]. B follows [2]. C too [3]."
    assert checked.removed == 3
    assert [(c.n, c.paper_id) for c in checked.citations] == [(1, "p3"), (2, "p1"), (3, "p2")]
    assert checked.unsupported == () and checked.supported


def test_check_citations_merges_repeats_and_reports_uncited_sentences():
    hits = [_hit(1), _hit(2)]
    checked = check_citations("First claim with support [2]. A second sentence with no source "
                              "at all. Last [1; 2].", hits)
    assert checked.text == ("First claim with support [1]. A second sentence with no source at all. "
                            "Last [2][1].")
    assert [c.paper_id for c in checked.citations] == ["p2", "p1"]
    assert checked.unsupported == ("A second sentence with no source at all.",)


def test_check_citations_with_only_bad_numbers_is_unsupported():
    checked = check_citations("Everything here is invented by the model [4].", [_hit(1)])
    assert checked.text == "Everything here is invented by the model."
    assert checked.citations == () and not checked.supported and checked.removed == 1


def test_offline_answer_cites_consecutively_when_it_skips_a_weak_paper():
    strong = _hit(1, "Strong", 0.95)
    weak = _hit(2, "Weak", 0.1)
    also = _hit(3, "Also", 0.9)
    ans = answer_offline("sentences", [strong, weak, also], 0.5)
    assert [(c.n, c.paper_id) for c in ans.citations] == [(1, "p1"), (2, "p3")]
    assert "[3]" not in ans.text and "Weak" not in ans.text
