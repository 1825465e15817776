"""Spelling and number forms (rag.text) and common vs distinctive words (rag.english,
rag.absence): a user's own way of writing a word must find the paper's."""

from __future__ import annotations

import pytest

from rag.absence import absent_words
from rag.english import COMMON, VERY_COMMON, WORDS_FILE, rank
from rag.text import stem, terms


@pytest.mark.parametrize(("uk", "us"), [
    ("behavioural modelling of organisations", "behavioral modeling of organizations"),
    ("an optimised regulariser for linearisation", "an optimized regularizer for linearization"),
    ("we analyse the colour of tumours", "we analyze the color of tumors"),
    ("defence against adversarial catalogues", "defense against adversarial catalogs"),
    ("the centre of a labelled fibre", "the center of a labeled fiber"),
    ("paediatric haemoglobin and oesophageal ageing", "pediatric hemoglobin and esophageal aging"),
    ("practise and judgement", "practice and judgment"),
])
def test_british_and_american_spellings_are_one_term(uk, us):
    assert terms(uk) == terms(us)


def test_words_that_only_look_british_keep_their_meaning():
    # "four" must not become "for" (a stop word), nor "hour"/"your"/"tour" lose their u.
    assert terms("four hours of your tour") == ["four", "hour", "your", "tour"]
    assert terms("rise wise") == ["rise", "wise"]


@pytest.mark.parametrize(("a", "b"), [
    ("a 557M-parameter model", "a 557-million-parameter model"),
    ("a 557 million parameter model", "a 557m parameter model"),
    ("1.5x faster", "1.5-fold faster"),
    ("1.5 times faster", "1.5× faster"),
    ("on 9x9 boards", "on 9 × 9 boards"),
    ("forty percent fewer", "40% fewer"),
    ("two thousand papers", "2k papers"),
    ("2,000 papers", "2000 papers"),
    ("a two-fold gain", "a 2x gain"),
])
def test_numbers_written_differently_are_one_term(a, b):
    assert terms(a) == terms(b)


def test_different_numbers_stay_different():
    assert terms("1.5x") != terms("2.5x")
    assert terms("557M") != terms("557B")
    assert terms("9x9") != terms("9x19")


def test_the_shipped_word_list_has_current_stems():
    """Each line's stem is what rag.text.stem makes now (else rerun
    scripts/make_english_words.py after changing the analyzer)."""
    stale = []
    for line in WORDS_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        word, _, stored = line.partition("\t")
        if stem(word) != stored:
            stale.append(word)
    assert not stale, stale[:10]


def test_ordinary_words_are_common_and_names_are_not():
    for word in ("don", "something", "nice", "job", "spot", "land", "shipped", "cash",
                 "sluggish", "taller", "behavioural", "practise", "defence", "organisations"):
        assert rank(word) <= COMMON, word
    for word in ("why", "something", "don"):
        assert rank(word) <= VERY_COMMON, word
    for word in ("GPipe", "NVMe", "quantization", "BitNet"):
        assert rank(word) > COMMON, word


def test_absent_words_name_only_what_is_distinctive():
    unknown = {stem(w) for w in ("nice", "job", "sluggish", "nvme", "japanese", "lyrics", "don")}
    absent = {a.word: a for a in absent_words(
        "I don't know, which nice job made my sluggish NVMe sing Japanese lyrics?",
        lambda t: 0 if t in unknown else 3)}
    assert set(absent) == {"don", "nice", "job", "sluggish", "NVMe", "Japanese", "lyrics"}
    assert [w for w, a in absent.items() if a.distinctive] == ["NVMe"]
    assert {w for w, a in absent.items() if a.concept} == {"sluggish", "NVMe", "Japanese",
                                                             "lyrics"}
    assert not any(absent[w].concept for w in ("don", "nice", "job"))


def test_a_number_the_index_holds_in_another_form_is_not_absent():
    held = set(terms("a 557-million-parameter model, 1.5-fold faster"))
    assert absent_words("the 557M-parameter model, 1.5x faster",
                        lambda t: 1 if t in held else 0) == []
