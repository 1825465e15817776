"""The question's words that no indexed paper contains, and which of them are evidence
that the question asks about something the index does not have.

Worked example, a corpus of ML papers and the question "Which paper made my sluggish
NVMe drive faster for Japanese lyrics, something nice?": no chunk contains "sluggish",
"NVMe", "Japanese", "lyrics", "something" or "nice". Only some of them say anything:

- "NVMe" is written like a name and is in no English word list: *distinctive*, the
  question hinges on it. It is named when Abstracta abstains and beside an answer.
- "lyrics" (rank ~3,900 in general English) and "Japanese" (~1,600, but capitalized in
  the middle of the question, as a name) are *concepts*: a near miss is best explained by
  them ("None of the indexed papers mentions Japanese or lyrics"), but common English
  words are no proof of absence, so they are named only when Abstracta abstains anyway.
- "sluggish" (~20,600), "something" and "nice" are ordinary words a user picks instead
  of the paper's own: they never make a question abstain and are never named.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.english import COMMON, VERY_COMMON, rank
from rag.text import STOPWORDS, WORD, number_forms, split_scripts, stem

# A word written like a name or an acronym: two capitals (AWQ, RoCE, BitNet), or letters
# and digits mixed (GPT4o, 24B). Ordinary capitalized words ("Berlin", "Which") are not.
NAME_LIKE = re.compile(r"^(?:\w*[A-Z]\w*[A-Z]\w*|(?=\w*[A-Za-z])(?=\w*\d)\w+)$")
# A number in the one written form of rag.text.number_forms: 557m, 1_5x, 9x9, 2000, 40.
_NUMBER = re.compile(r"^\d+(?:_\d+)?(?:[xkmbt]|x\d+)?$", re.I)


@dataclass(frozen=True)
class Absent:
    """One question word that no indexed chunk contains."""

    word: str  # as the user wrote it ("NVMe", "Japanese")
    term: str  # its stem, as the index sees it
    rank: int  # its general-English frequency rank (rag.english; UNRANKED if unlisted)
    name: bool  # written like a name or acronym (NVMe, GPT4o)
    capitalized: bool  # capitalized, not as the question's first word (Japanese, Berlin)

    @property
    def distinctive(self) -> bool:
        """Evidence of absence: a word rare in general English (a coined name such as
        NVMe or GPT4o is in no word list). A common acronym written like a name ("RAM",
        "GPU") is not: the paper may well spell it out in words."""
        return self.rank > COMMON

    @property
    def concept(self) -> bool:
        """Worth naming when Abstracta abstains: no filler ("something", "why", "don")."""
        return self.distinctive or self.rank > VERY_COMMON or self.capitalized


_ACRONYM = re.compile(r"^[A-Z][A-Za-z]{1,5}s?$")  # MLP, PDEs, HJB, VQ, RAM (2-6 letters)


def is_acronym(word: str) -> bool:
    """Written like an acronym: 2-6 letters, mostly capitals (MLP, PDEs, VQ)."""
    letters = word[:-1] if word.endswith("s") and len(word) > 2 else word
    return bool(_ACRONYM.match(word)) and sum(c.isupper() for c in letters) >= max(
        2, len(letters) - 1)


def spelled_out(acronym: str, text: str) -> bool:
    """Whether ``text`` spells the acronym out: consecutive words whose letters give the
    acronym's letters in order, each word's first letter being one of them (the rule of
    Schwartz and Hearst, 2003). A user writes "MLP" or "PDE" where the abstract says
    "multilayer perceptron" or "partial differential equations"; the acronym is then no
    word the paper lacks.

    >>> spelled_out("MLP", "a small multilayer perceptron on top"), spelled_out("HJB",
    ...     "the Hamilton-Jacobi-Bellman equation"), spelled_out("PDE", "pixel diffusion")
    (True, True, False)
    """
    letters = acronym.lower().rstrip("s") if len(acronym) > 2 else acronym.lower()
    words_ = WORD.findall(text.lower())
    return any(w[0] == letters[0] and _spells(letters, words_, i) for i, w in enumerate(words_))


def _spells(letters: str, words_: list[str], i: int) -> bool:
    """Whether words_[i:] spell ``letters`` (see :func:`spelled_out`): each word starts
    with the next letter and may supply more of them from inside itself, in order."""
    k = 0  # letters consumed
    for w in words_[i:i + len(letters)]:
        if w[0] != letters[k]:
            return False
        k += 1
        for ch in w[1:]:  # later letters of the same word ("multilayer" gives m and l)
            if k < len(letters) and ch == letters[k]:
                k += 1
        if k == len(letters):
            return True
    return False


def absent_words(question: str, doc_freq: Callable[[str], int]) -> list[Absent]:
    """The question's words (each once, in order) whose stems no chunk contains, per
    ``doc_freq`` (the lexical index's chunks-per-term). Stop words, numbers and words
    of other scripts are left out: "557M" that the index holds as "557-million" is
    found (rag.text.number_forms), and a number no paper states is not a concept to name.

    >>> unknown = {"my", "sluggish", "nvme", "japanes", "lyric"}
    >>> [(a.word, a.distinctive, a.concept) for a in absent_words(
    ...     "Which paper speeds up my sluggish NVMe for Japanese lyrics?",
    ...     lambda t: 0 if t in unknown else 7)]
    [('my', False, False), ('sluggish', False, True), ('NVMe', True, True), \
('Japanese', False, True), ('lyrics', False, True)]
    """
    out: list[Absent] = []
    seen: set[str] = set()
    found = WORD.findall(number_forms(split_scripts(question)))
    # Words of another script ("中文", "ünïcödé") amid an English question are outside
    # the English word list's reach: it can tell neither filler nor a rare term among
    # them, so they count for nothing. A question written wholly in another script is
    # another matter: none of its words is in an English index, and all of them count.
    foreign_only = not any(w.isascii() and w.lower() not in STOPWORDS for w in found)
    for i, w in enumerate(found):
        low = w.lower()
        if low in STOPWORDS or _NUMBER.match(low) or low in seen or not (
                low.isascii() or foreign_only):
            continue
        seen.add(low)
        term = stem(low)
        if doc_freq(term) == 0:
            out.append(Absent(w, term, rank(low), bool(NAME_LIKE.match(w)),
                              i > 0 and w[:1].isupper()))
    return out
