"""How common a word is in general English: the rank of its stem in a frequency list.

A question word that no indexed paper contains is evidence that the question asks about
something the index does not have only when the word is *distinctive*: a name, an
acronym, a rare technical term ("NVMe", "lyrics" in a corpus of ML papers). In any corpus
most English words are absent; "sluggish", "job" or "don" (from "don't") say nothing
about whether a paper answers the question, and must never be why Abstracta abstains or
what it says no paper mentions.

The list (``rag/data/english_words.txt``, 48k words, most frequent first) is cut from
wordfreq's English frequencies by ``scripts/make_english_words.py``, each word with its
stem (so loading stems nothing: ~40 ms). Ranks are by stem
(after the British -> American spelling of :func:`rag.text.stem`), so "organisations"
has the rank of "organization", its most frequent form.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rag.text import stem

WORDS_FILE = Path(__file__).parent / "data" / "english_words.txt"
# Rank cuts. Up to COMMON a word is ordinary English ("sluggish" is 20,600th), never
# evidence that a question is off-corpus; up to VERY_COMMON it is filler ("why", "job"),
# never named as a missing concept unless written as a name.
COMMON = 30_000
VERY_COMMON = 2_000
UNRANKED = 10**9  # a word (stem) the list does not have: distinctive


@lru_cache(maxsize=1)
def _stem_ranks() -> dict[str, int]:
    """stem -> the best (lowest) rank of any listed word with that stem; read once."""
    ranks: dict[str, int] = {}
    with WORDS_FILE.open(encoding="utf-8") as f:
        rank = 0
        for line in f:
            if line.startswith("#"):
                continue
            rank += 1
            ranks.setdefault(line.rstrip("\n").partition("\t")[2], rank)
    return ranks


def rank(word: str) -> int:
    """The word's frequency rank in general English (1 = most frequent), by its stem;
    UNRANKED when no listed word has its stem.

    >>> rank("don") < COMMON, rank("Organisations") < COMMON, rank("GPipe") == UNRANKED
    (True, True, True)
    """
    return _stem_ranks().get(stem(word.lower()), UNRANKED)


def is_common(word: str, top: int = COMMON) -> bool:
    """Whether the word is among the ``top`` most frequent English words (by stem)."""
    return rank(word) <= top
