"""The text helpers a front end shows answers with (exported from ``rag``)."""

from __future__ import annotations

from rag import citing_sentences, split_citations, supporting_sentences


def test_split_citations_keeps_every_character_and_reads_each_bracket():
    text = "GQSA prunes groups [1, 2]. It is 4x faster [3]; see [x] and [2;4]."
    parts = split_citations(text)
    assert parts == ["GQSA prunes groups ", [1, 2], ". It is 4x faster ", [3],
                     "; see [x] and ", [2, 4], "."]
    assert split_citations("A [1, 2]. B") == ["A ", [1, 2], ". B"]  # the docstring example
    assert split_citations("no citation") == ["no citation"]


def test_citing_sentences_pick_the_ones_citing_n_else_the_whole_answer():
    answer = "GQSA combines group quantization with sparsity [1]. It runs 4x faster [2].\nDone."
    assert citing_sentences(answer, 2) == "It runs 4x faster [2]."
    assert citing_sentences(answer, 7) == answer


def test_supporting_sentences_mark_the_quoted_and_the_paraphrased_sentence():
    abstract = ("Large language models are slow at inference. We propose GQSA, which combines "
                "group quantization with structured sparsity. GQSA runs four times faster "
                "than dense inference on common GPUs. Code is available.")
    quoted = supporting_sentences(abstract, "We propose GQSA, which combines group "
                                            "quantization with structured sparsity [1].")
    assert [s for s, _ in quoted] == [
        "Large language models are slow at inference.",
        "We propose GQSA, which combines group quantization with structured sparsity.",
        "GQSA runs four times faster than dense inference on common GPUs.",
        "Code is available."]
    assert [m for _, m in quoted] == [False, True, False, False]
    paraphrase = supporting_sentences(abstract, "On common GPUs it is four times faster than "
                                                "dense inference [1].")
    assert [m for _, m in paraphrase] == [False, False, True, False]
    assert not any(m for _, m in supporting_sentences(abstract, "Nothing related at all."))
