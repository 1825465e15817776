"""The question's own evidence: how the index sees its terms, and how a paper's text
covers them. One component (:class:`TextEvidence`) declares these features beside the
retrievers' (``FEATURES``: paper-level; ``QUESTION_FEATURES``: the same for every paper
of a question, read by the calibration's second stage)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from functools import lru_cache

from rag.identity import normalize_title
from rag.retrieve.retrievers import Features, Query
from rag.text import STOPWORDS, WORD, stem, terms, words
from rag.types import StoredPaper


@dataclass(frozen=True)
class TermStats:
    """The question's distinct stemmed terms as the index sees them."""

    weights: dict[str, float]  # term -> IDF; a term no chunk has gets the largest IDF
    unknown: frozenset[str]  # terms no chunk contains (df = 0)
    max_idf: float  # the IDF of a term with df = 0 in this index
    unknown_name: bool = False  # an unknown word is written like a name: AWQ, RoCE, BitNet


# A word written like a name or an acronym: two capitals (AWQ, RoCE, BitNet), or letters
# and digits mixed (GPT4o, 24B). Ordinary capitalized words ("Berlin", "Which") are not.
_NAME_LIKE = re.compile(r"^(?:\w*[A-Z]\w*[A-Z]\w*|(?=\w*[A-Za-z])(?=\w*\d)\w+)$")


def term_stats(query_terms, lex, question: str = "") -> TermStats:
    """Each distinct query term's IDF in the index. A term no chunk contains (df = 0)
    gets the largest IDF there is: a question that hinges on a word no paper uses
    should not be covered by the papers' other words. ``question`` (as written) tells
    whether an unknown word is written like a name."""
    if lex is None:
        return TermStats({t: 1.0 for t in query_terms}, frozenset(), 1.0)
    weights = {t: lex.idf(t) for t in dict.fromkeys(query_terms)}
    unknown = frozenset(t for t in weights if lex.doc_freq(t) == 0)
    named = any(_NAME_LIKE.match(w) and stem(w.lower()) in unknown
                for w in WORD.findall(question))
    return TermStats(weights, unknown, float(lex.idf("\x00")),  # "\x00" is never a term
                     named)


def coverage(weights: dict[str, float], present: Set[str]) -> float:
    """IDF-weighted share of the question's terms that a text contains.

    >>> coverage({"gpipe": 6.0, "propos": 1.0, "paper": 1.0}, {"gpipe", "paper"})
    0.875
    """
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in present) / total if total else 0.0


@lru_cache(maxsize=4096)
def paper_terms(title: str, abstract: str) -> tuple[frozenset[str], frozenset[str]]:
    """The stemmed terms of a paper (title and abstract) and of its title alone; cached,
    since the same papers come back for question after question (UI, eval)."""
    # The distinct words first, then one stem each: the same set as terms(), at 2/3 of
    # the cost (an abstract repeats its words; ~25 papers are scored per question).
    in_title = frozenset(terms(title))
    return in_title | frozenset(map(stem, set(words(abstract)))), in_title


class TextEvidence:
    """The question's terms against the index and each paper's text.

    - ``coverage`` / ``title_coverage``: the IDF-weighted share of the question's terms
      the paper (its title) contains;
    - ``missing_max_idf``: the IDF of the most distinctive question term the paper
      lacks, over the index's largest IDF (0: it lacks none);
    - ``unknown_share`` (question-level): the IDF share of the question's terms that no
      indexed chunk contains; ``unknown_name``: one of them is written like a name.
    """

    FEATURES = ("coverage", "title_coverage", "missing_max_idf")
    QUESTION_FEATURES = ("unknown_share", "unknown_name")

    def __init__(self, lex):
        self.lex = lex

    def features(self, query: Query, papers: Mapping[str, StoredPaper]) -> dict[str, Features]:
        stats = term_stats(query.terms, self.lex, query.text)
        weights = stats.weights
        total = sum(weights.values()) or 1.0
        question = {"unknown_share": sum(weights[t] for t in stats.unknown) / total,
                    "unknown_name": 1.0 if stats.unknown_name else 0.0}
        out = {}
        for pid, paper in papers.items():
            present, in_title = paper_terms(paper.title, paper.abstract)
            out[pid] = {
                "coverage": coverage(weights, present),
                "title_coverage": coverage(weights, in_title),
                "missing_max_idf": max((w for t, w in weights.items() if t not in present),
                                       default=0.0) / stats.max_idf,
                **question,
            }
        return out


def title_in_question(title: str, question_norm: str) -> bool:
    """Whether the question names the paper: its whole normalized title (3 words or
    more: "Summary" and "Reply" are too common), or the name before the title's colon
    when that name is written like one ("GPipe: Efficient Training ..." for "Which paper
    proposes GPipe?"; 1 to 3 words, 4 characters or more, one of them like AWQ, BigCodeBench
    or GPT4o), occurs word for word in the question.

    >>> title_in_question("GPipe: Efficient Training of Giant Neural Networks",
    ...                   normalize_title("Which paper proposes GPipe?"))
    True
    """
    padded = f" {question_norm} "
    norm = normalize_title(title)
    if len(norm.split()) >= 3 and f" {norm} " in padded:
        return True
    head, colon, _ = title.partition(":")
    names = WORD.findall(head)
    return bool(colon) and 1 <= len(names) <= 3 and len(head.strip()) >= 4 and any(
        _NAME_LIKE.match(n) for n in names) and f" {normalize_title(head)} " in padded


def unknown_terms(question: str, lex) -> list[str]:
    """The question's words, as written, whose stems no chunk of the lexical index
    ``lex`` contains.

    For an abstention that can say "none of the indexed papers mentions NVMe". Words of
    the stop list and pure numbers are left out; a word asked twice is listed once.
    """
    if lex is None:
        return []
    out: list[str] = []
    seen: set[str] = set()
    for w in WORD.findall(question):
        low = w.lower()
        if low in STOPWORDS or low.isdigit() or low in seen:
            continue
        seen.add(low)
        if lex.doc_freq(stem(low)) == 0:
            out.append(w)
    return out
