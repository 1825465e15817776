"""Text, the one copy: words, stems, stop words, sentences, citations, display-safe text.

Every stage that looks at words uses these functions (the BM25 build and query, the
relevance coverage, the offline answerer's sentence picking, the UI's highlighting),
so a question and a chunk are always cut and stemmed the same way.

Stemming is Snowball English (Porter 2), as in Lucene's English analyzer and bm25s:
"proposes", "proposed" and "proposing" all become "propos", so a word form in the
question never decides whether a paper matches.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# --- words ------------------------------------------------------------------------------

WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's and bm25s' token pattern: 2+ chars

# Lucene's English stop set (also bm25s' "en" list). BM25 and coverage both drop these;
# everything else ("paper", "which", "propose") is weighted by its IDF instead of being
# listed by hand: a word that every abstract uses weighs almost nothing on its own.
STOPWORDS = frozenset((
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with").split())


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: Snowball's C stemmers

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball English stem of one lowercased word: 'proposes' -> 'propos'."""
    return _stemmer().stemWord(word)


def words(text: str) -> list[str]:
    """Lowercased words of 2+ characters, stop words removed, not stemmed."""
    return [w for w in WORD.findall(text.lower()) if w not in STOPWORDS]


def terms(text: str) -> list[str]:
    """Stemmed words: the tokens of BM25 (build and query) and of coverage.

    >>> terms("Which paper proposes GPipe?")
    ['which', 'paper', 'propos', 'gpipe']
    """
    return [stem(w) for w in words(text)]


# --- sentences --------------------------------------------------------------------------

# A candidate sentence end: ., ! or ? then whitespace then something that can start a
# sentence. Decimals ("3.5") never match: they have no whitespace after the dot.
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'\[])")
# Endings that are not sentence ends: abbreviations and initials ("J. Smith").
_NOT_END = re.compile(
    r"(?:\b(?:e\.g|i\.e|et al|etc|vs|cf|Fig|Figs|Eq|Eqs|Sec|Tab|approx|resp|w\.r\.t|No|Dr|"
    r"Inc|Ltd|Corp|St|Mr|Ms|Prof)\.|(?<![\w.])[A-Z]\.)$", re.I)
# "Hogwild! Inference", "Yahoo! Answers": a capitalized word with "!" followed by another
# capitalized word is a name, not the end of a sentence.
_NAME_BANG = re.compile(r"\b[A-Z][\w-]*!$")


def sentences(text: str) -> list[str]:
    """Sentences of an abstract.

    >>> sentences("We use e.g. GPUs. Hogwild! Inference runs 2.5x faster. Done.")
    ['We use e.g. GPUs.', 'Hogwild! Inference runs 2.5x faster.', 'Done.']
    """
    parts = _SENT_END.split(text.strip())
    out: list[str] = []
    for part in parts:
        if out and (_NOT_END.search(out[-1]) or (
                _NAME_BANG.search(out[-1]) and part[:1].isupper())):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return [s.strip() for s in out if s.strip()]


# --- citations --------------------------------------------------------------------------

CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")  # [1], [1, 2], [1; 3]


def citation_numbers(group: str) -> list[int]:
    """The numbers inside one citation bracket's group: '1, 3' -> [1, 3]."""
    return [int(x) for x in re.split(r"\s*[,;]\s*", group)]


def cited(text: str) -> list[int]:
    """Every citation number in the text, in order of appearance."""
    return [n for m in CITE.finditer(text) for n in citation_numbers(m.group(1))]


# --- display-safe text ------------------------------------------------------------------

# ANSI escape sequences: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \), and the
# other two-character escapes. Their 8-bit forms (U+009B CSI, U+009D OSC) too.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"             # CSI: colours, cursor moves, ESC[2J
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: titles, OSC 8 links
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"      # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"                            # any other escape (ESC c resets)
)
# Bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069) and the marks that
# can reorder what follows them (U+200E, U+200F, U+061C): "fdp.exe" must not show as
# "exe.pdf".
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def display_safe(text: str, *, newlines: bool = True) -> str:
    """Paper text or a file name made inert for a terminal or a page.

    Removes ANSI/OSC escape sequences, C0 and C1 control characters (keeping newline
    and tab when ``newlines``), and bidi controls; keeps every ordinary character
    (accents, CJK, math).

    >>> display_safe("ok\\x1b[2J\\x1b]8;;http://x\\x07link\\x1b]8;;\\x07 \\u202efdp.exe\\x00")
    'oklink fdp.exe'
    """
    if text.isprintable():  # the common case: nothing to do (isprintable is False for \\n)
        return text
    text = _ANSI.sub("", text)
    text = _BIDI.sub("", text)
    keep = "\n\t" if newlines else ""
    return "".join(
        ch if ch in keep or unicodedata.category(ch) != "Cc" else ("" if ch != "\r" else "")
        for ch in text)
