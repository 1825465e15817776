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


def split_citations(text: str) -> list[str | list[int]]:
    """The text in pieces, plain strings and the numbers of each citation bracket, in
    order (a front end links the numbers): "A [1, 2]. B" -> ["A ", [1, 2], ". B"]."""
    out: list[str | list[int]] = []
    last = 0
    for m in CITE.finditer(text):
        out += [text[last:m.start()], citation_numbers(m.group(1))]
        last = m.end()
    out.append(text[last:])
    return out


def citing_sentences(text: str, n: int) -> str:
    """The sentences of an answer that cite [n] (the whole answer when none does): the
    evidence :func:`supporting_sentences` looks for in paper ``n``'s abstract."""
    parts = [s for para in text.split("\n") for s in sentences(para) if n in cited(s)]
    return " ".join(parts) or text


def _content_terms(text: str) -> set[str]:
    return {t for t in terms(text) if len(t) > 2}


def supporting_sentences(abstract: str, evidence: str) -> list[tuple[str, bool]]:
    """The abstract's sentences, each with whether it supports ``evidence`` (the answer
    text citing this paper): the UI marks these in a source card.

    A sentence the answer quotes (the offline answerer copies sentences) always
    counts; otherwise one counts when most of its content words (stemmed, as BM25
    sees them) appear in the evidence (an LLM paraphrase). When nothing passes, the
    best sentence with a fair overlap is taken, so a cited paper shows where its
    support is.
    """
    quoted = " ".join(words(evidence))
    ev_terms = _content_terms(evidence)
    parts = sentences(abstract)
    scores = []
    for s in parts:
        norm = " ".join(words(s))
        if len(norm) > 20 and norm in quoted:
            scores.append(1.0)
            continue
        own = _content_terms(s)
        scores.append(len(own & ev_terms) / len(own) if len(own) >= 3 else 0.0)
    marks = [sc >= 0.6 for sc in scores]
    if not any(marks) and scores and max(scores) >= 0.3:
        marks[scores.index(max(scores))] = True
    return list(zip(parts, marks, strict=True))


# --- display-safe text ------------------------------------------------------------------

# ANSI escape sequences: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \), and the
# other two-character escapes. Their 8-bit forms (U+009B CSI, U+009D OSC) too. A string
# sequence (OSC, DCS, ...) is removed whole only when it is terminated on the same line;
# an unterminated one loses just its introducer (the ESC goes with the other controls),
# so a stray "ESC ]" cannot swallow the rest of an abstract.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"                     # CSI: colours, cursor moves, ESC[2J
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)"  # OSC: titles, OSC 8 links
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c\n]*(?:\x1b\\|\x9c)"  # DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]"                                     # other escapes (ESC c resets)
)
# C0 and C1 control characters (Unicode category Cc), DEL included, except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069) and the marks that
# can reorder what follows them (U+200E, U+200F, U+061C): "fdp.exe" must not show as
# "exe.pdf".
_BIDI_CHARS = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
_BIDI = re.compile(f"[{_BIDI_CHARS}]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # from undecodable bytes: cannot be printed


def display_safe(text: str, *, newlines: bool = True) -> str:
    """Paper text or a file name made inert for a terminal or a page.

    Removes ANSI/OSC escape sequences, C0 and C1 control characters and bidi controls;
    keeps every ordinary character (accents, CJK, math). With ``newlines`` a line break
    stays a line break (CR LF and a lone CR become LF) and a tab stays a tab; without it
    both become a space, for one-line output such as a title or a table cell.

    >>> display_safe("ok\\x1b[2J\\x1b]8;;http://x\\x07link\\x1b]8;;\\x07 \\u202efdp.exe\\x00")
    'oklink fdp.exe'
    >>> display_safe("Café 模型\\r\\nline 2", newlines=False)
    'Café 模型 line 2'
    """
    if text.isprintable():  # the common case: nothing to do (isprintable is False for \\n)
        return text
    text = _ANSI.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not newlines:
        text = text.replace("\n", " ").replace("\t", " ")
    text = _CONTROL.sub("", text)
    text = _BIDI.sub("", text)
    return _LONE_SURROGATE.sub("\ufffd", text)


def json_safe(json_text: str) -> str:
    """JSON text whose strings show inertly in a terminal: the control and bidi
    characters that ``json.dumps(..., ensure_ascii=False)`` leaves raw (C1 controls,
    DEL, bidi overrides) written as ``\\uXXXX`` escapes. The data is unchanged: a JSON
    parser reads the same strings back.

    >>> json_safe('{"t": "\\u202efdp.exe\\x9b2J"}')
    '{"t": "\\\\u202efdp.exe\\\\u009b2J"}'
    """
    return re.sub(f"[\\x7f-\\x9f{_BIDI_CHARS}]", lambda m: f"\\u{ord(m.group()):04x}",
                  json_text)
