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


def test_spelled_numbers_before_a_unit_become_digits_whatever_the_text():
    """Found from the units (rag.text._spell_numbers), the number words that precede one
    are those the plain regex would find, on random mixes of number words, units and
    separators; a long-s "ſix" (a number word only by case folding) no longer crashes."""
    import random
    import re

    from rag.text import _NUMBER_WORDS, _SPELLED, _spell_numbers, number_forms, words

    def by_regex(text: str) -> str:
        return _SPELLED.sub(lambda m: _NUMBER_WORDS.get(m.group(1).lower()) or _NUMBER_WORDS.get(
            m.group(1).casefold(), m.group(1)), text)

    atoms = [*_NUMBER_WORDS, "Forty", "TWO", "ſix", "nine", "ninety", "twenty_two", "one1",
             "é", "x", "2", "percent", "per cent", "per\ncent", "fold", "Times", "thousand",
             "million", "billion", "trillion", "timesx", "folds", " ", "  ", "-", "\n", ".", "("]
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice(atoms) + rng.choice(["", " ", "-"])
                       for _ in range(rng.randint(1, 8)))
        assert _spell_numbers(text) == by_regex(text), text
    assert number_forms("ſix times, Forty percent and two-fold") == "6x, 40 percent and 2x"
    assert re.fullmatch(r"[\w ]+", " ".join(words("ſix times")))
