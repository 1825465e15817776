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
from rag.text import STOPWORDS, WORD, number_forms, stem

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
        """Evidence of absence: a name, or a word rare in general English."""
        return (self.name and self.rank > VERY_COMMON) or self.rank > COMMON

    @property
    def concept(self) -> bool:
        """Worth naming when Abstracta abstains: no filler ("something", "why", "don")."""
        return self.distinctive or self.rank > VERY_COMMON or self.capitalized


def absent_words(question: str, doc_freq: Callable[[str], int]) -> list[Absent]:
    """The question's words (each once, in order) whose stems no chunk contains, per
    ``doc_freq`` (the lexical index's chunks-per-term). Stop words and numbers are left
    out: "557M" that the index holds as "557-million" is found (rag.text.number_forms),
    and a number no paper states is not a concept to name.

    >>> unknown = {"my", "sluggish", "nvme", "japanes", "lyric"}
    >>> [(a.word, a.distinctive, a.concept) for a in absent_words(
    ...     "Which paper speeds up my sluggish NVMe for Japanese lyrics?",
    ...     lambda t: 0 if t in unknown else 7)]
    [('my', False, False), ('sluggish', False, True), ('NVMe', True, True), \
('Japanese', False, True), ('lyrics', False, True)]
    """
    out: list[Absent] = []
    seen: set[str] = set()
    for i, w in enumerate(WORD.findall(number_forms(question))):
        low = w.lower()
        if low in STOPWORDS or _NUMBER.match(low) or low in seen:
            continue
        seen.add(low)
        term = stem(low)
        if doc_freq(term) == 0:
            out.append(Absent(w, term, rank(low), bool(NAME_LIKE.match(w)),
                              i > 0 and w[:1].isupper()))
    return out
