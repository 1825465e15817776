"""Author names as the ``--author`` filter compares them: the one copy of the rule.

A stored ``authors`` value is one string, names separated by commas, ``;`` or "and"
(``"Geoffrey E. Hinton, Wei Li and Zoë Ó Briain"``). Each name becomes *tokens*: accents
dropped, case folded, apostrophes removed, split at anything not a letter or digit,
parenthesised affiliations and a trailing "Jr."/"III" left out: ``"Zoë Ó Briain
(Dublin)"`` -> ``["zoe", "o", "briain"]``. A one-letter token is an *initial*; the last
token is the *surname*.

A wanted name of one word matches any name with that whole token. A wanted name of two
or more words ends with a surname: it matches a name with that surname whose earlier
tokens pair off, in order, with the wanted name's earlier words (equal, or an initial
and a token starting with it). Worked examples:

- "Hinton" matches "Geoffrey E. Hinton" (token ``hinton``); "Li" matches "Wei Li" and
  "Li Na" but not "Lin Wu" (tokens are whole: ``li`` != ``lin``) nor "L. Wang".
- "G. Hinton" and "Geoffrey Hinton" both match "Geoffrey E. Hinton" and "G. E. Hinton";
  "Geoffrey Hinton" does not match the paper of "Geoffrey Smith, John Hinton" (two
  names), and "G. Hinton" does not match "Hinton Grey" (another surname).
- "Müller" matches "Muller" and "MÜLLER" (not "Mueller": no transliteration).

:func:`index_keys` files a paper under each whole token and, per name, under each
(earlier token, surname) pair: ``"wei~li"`` and ``"w*~li"`` for "Wei Li", ``"g.~hinton"``
and ``"g*~hinton"`` for "G. Hinton". :func:`lookups` turns a wanted name into those keys,
so a name of one or two words is answered by the keys alone; a longer one is checked
with :func:`paper_matches` on the few papers under all its pairs.
"""

from __future__ import annotations

import re
import unicodedata

_AFFILIATION = re.compile(r"\([^()]*\)")
_SEPARATORS = re.compile(r"\s*(?:[,;]|\band\b)\s*", re.IGNORECASE)
_APOSTROPHES = re.compile(r"['’`ʼ]")
_NOT_WORD = re.compile(r"[\W_]+")
_SUFFIXES = {"jr", "sr", "ii", "iii", "iv"}


def fold(text: str) -> str:
    """Accents dropped, case folded: ``"Zoë ÓBriain"`` -> ``"zoe obriain"``."""
    if text.isascii():  # most names: nothing to decompose (a third of the facet's cost)
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def tokens(name: str) -> list[str]:
    """One name's tokens: ``"Geoffrey E. Hinton Jr."`` -> ``["geoffrey", "e", "hinton"]``."""
    out = [t for t in _NOT_WORD.split(_APOSTROPHES.sub("", fold(name))) if t]
    while len(out) > 1 and out[-1] in _SUFFIXES:
        out.pop()
    return out


def names(authors: str) -> list[list[str]]:
    """A stored authors value as the tokens of each name (empty names left out)."""
    cleaned = _AFFILIATION.sub(" ", authors or "")
    return [t for t in (tokens(n) for n in _SEPARATORS.split(cleaned)) if t]


def _pair_keys(token: str, surname: str) -> tuple[str, str]:
    """The keys an earlier token of a name is filed under, with the surname: itself
    (``wei~li``, or ``w.~li`` when stored as an initial) and its letter (``w*~li``)."""
    return (f"{token}~{surname}" if len(token) > 1 else f"{token}.~{surname}",
            f"{token[0]}*~{surname}")


def index_keys(authors: str) -> set[str]:
    """What the author facet files a paper under (see the module)."""
    keys: set[str] = set()
    for name in names(authors):
        keys.update(t for t in name if len(t) > 1)
        surname = name[-1]
        if len(name) > 1 and len(surname) > 1:
            keys.update(k for t in name[:-1] for k in _pair_keys(t, surname))
    return keys


def wanted(text: str) -> list[str]:
    """A typed author name as tokens. ValueError when it does not end with a name of two
    letters or more (initials alone name nobody)."""
    out = tokens(_AFFILIATION.sub(" ", text))
    if not out or len(out[-1]) < 2:
        raise ValueError(f"--author {text!r} needs a name ending with a surname "
                         "(Hinton, G. Hinton), not only initials")
    return out


def lookups(want: list[str]) -> list[tuple[str, ...]]:
    """The keys to look up for a wanted name: a matching paper is under at least one key
    of each tuple. Exact (no paper left to check) for one or two words."""
    if len(want) == 1:
        return [(want[0],)]
    surname = want[-1]
    return [(f"{t}*~{surname}",) if len(t) == 1 else (f"{t}~{surname}", f"{t[0]}.~{surname}")
            for t in want[:-1]]


def _pairs(a: str, b: str) -> bool:
    return a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b))


def name_matches(want: list[str], name: list[str]) -> bool:
    """Whether one stored name matches the wanted name (see the module)."""
    if len(want) == 1:
        return want[0] in name
    if len(name) < 2 or name[-1] != want[-1]:
        return False
    at = 0
    for token in want[:-1]:
        # The earliest pairing token: leaves the most room for the tokens after it.
        at = next((i + 1 for i in range(at, len(name) - 1) if _pairs(token, name[i])), -1)
        if at < 0:
            return False
    return True


def paper_matches(want: list[str], authors: str) -> bool:
    """Whether one of the paper's names matches the wanted name."""
    return any(name_matches(want, name) for name in names(authors))
