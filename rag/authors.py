"""Author names as the ``--author`` filter compares them: the one copy of the rule.

A stored ``authors`` value is one string, names separated by commas, ``;`` or "and"
(``"Geoffrey E. Hinton, Wei Li and Zoë Ó Briain"``). Each name becomes *tokens*: accents
dropped, case folded, apostrophes removed, split at anything not a letter or digit,
parenthesised affiliations left out: ``"Zoë Ó Briain (Dublin)"`` -> ``["zoe", "o",
"briain"]``. A one-letter token is an *initial*.

A wanted name matches a stored name when its tokens pair off, in order, with tokens of
that one name: equal tokens, or an initial and a token starting with that letter; one
pair at least must be whole equal tokens. Worked examples:

- "Hinton" matches "Geoffrey E. Hinton" (token ``hinton``); "Li" matches "Wei Li" but not
  "Lin Wu" (tokens are whole: ``li`` != ``lin``) nor "L. Wang" (one word is a name, not
  an initial).
- "G. Hinton" and "Geoffrey Hinton" both match "Geoffrey E. Hinton" and "G. E. Hinton";
  "Geoffrey Hinton" does not match the paper of "Geoffrey Smith, John Hinton" (two names),
  and "G. Hinton" does not match "Hinton Grey" (the order differs: given names first, as
  arXiv writes them).
- "Müller" matches "Muller" and "MÜLLER" (not "Mueller": no transliteration).

The index side (:func:`index_keys`) keeps, per paper, each whole token of two letters or
more and each stored initial as ``"g."``; :func:`candidate_keys` says which keys a wanted
name's papers must all have, and :func:`paper_matches` checks the names of the few papers
left (two or more tokens only: one token is matched exactly by its key).
"""

from __future__ import annotations

import re
import unicodedata

_AFFILIATION = re.compile(r"\([^()]*\)")
_SEPARATORS = re.compile(r"\s*(?:[,;]|\band\b)\s*", re.IGNORECASE)
_APOSTROPHES = re.compile(r"['’`ʼ]")
_NOT_WORD = re.compile(r"[\W_]+")


def fold(text: str) -> str:
    """Accents dropped, case folded: ``"Zoë ÓBriain"`` -> ``"zoe obriain"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def tokens(name: str) -> list[str]:
    """One name's tokens: ``"Geoffrey E. Hinton"`` -> ``["geoffrey", "e", "hinton"]``."""
    return [t for t in _NOT_WORD.split(_APOSTROPHES.sub("", fold(name))) if t]


def names(authors: str) -> list[list[str]]:
    """A stored authors value as the tokens of each name (empty names left out)."""
    cleaned = _AFFILIATION.sub(" ", authors or "")
    return [t for t in (tokens(n) for n in _SEPARATORS.split(cleaned)) if t]


def index_keys(authors: str) -> set[str]:
    """What the author facet files a paper under: whole tokens, and initials as ``"g."``."""
    return {t if len(t) > 1 else f"{t}." for name in names(authors) for t in name}


def wanted(text: str) -> list[str]:
    """A typed author name as tokens. ValueError when it has no token of two letters or
    more (initials alone name nobody)."""
    out = tokens(_AFFILIATION.sub(" ", text))
    if not any(len(t) > 1 for t in out):
        raise ValueError(f"--author {text!r} needs a name (a surname), not only initials")
    return out


def candidate_keys(want: list[str]) -> list[tuple[str, ...]]:
    """For each whole token of a wanted name, the keys of which a matching paper has at
    least one: the token itself, or (when the name has other tokens) its initial as
    stored ("Geoffrey Hinton" may be stored as "G. Hinton")."""
    whole = [t for t in want if len(t) > 1]
    if len(want) == 1:
        return [(whole[0],)]
    return [(t, f"{t[0]}.") for t in whole]


def _pairs(a: str, b: str) -> bool:
    return a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b))


def name_matches(want: list[str], name: list[str]) -> bool:
    """Whether the wanted tokens pair off, in their order, with tokens of ``name`` (a
    subsequence: "G. Hinton" matches "Geoffrey E. Hinton" but not "Hinton Grey"), and at
    least one whole token is equal (so initials alone never match)."""
    at = 0
    for token in want:
        # The earliest pairing token: leaves the most room for the tokens after it.
        at = next((i + 1 for i in range(at, len(name)) if _pairs(token, name[i])), -1)
        if at < 0:
            return False
    return any(len(t) > 1 and t in name for t in want)


def paper_matches(want: list[str], authors: str) -> bool:
    """Whether one of the paper's names matches the wanted name."""
    return any(name_matches(want, name) for name in names(authors))
