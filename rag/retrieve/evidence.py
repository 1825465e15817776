"""The question's own evidence: how the index sees its terms, and how a paper's text
covers them. One component (:class:`TextEvidence`) declares these features beside the
retrievers' (``FEATURES``: paper-level; ``QUESTION_FEATURES``: the same for every paper
of a question, read by the calibration's second stage)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from functools import lru_cache

from rag.absence import NAME_LIKE, Absent, absent_words, is_acronym, spelled_out
from rag.english import is_common
from rag.identity import normalize_title
from rag.retrieve.retrievers import Features, Query, relative
from rag.text import WORD, stem, terms, words
from rag.types import StoredPaper


@dataclass(frozen=True)
class TermStats:
    """The question's distinct stemmed terms as the index sees them (see rag.absence).

    A term no chunk contains is weighed by what kind of word it is: a *distinctive* one
    (a term rare in general English) or a *concept* ("lyrics") keeps the largest IDF
    there is, since a question that hinges on a word no paper uses should not be covered
    by the papers' other words; filler ("something", "job", "don") or a number the index
    lacks weighs nothing, since no paper has it and it tells no paper from another.
    """

    weights: dict[str, float]  # term -> IDF (absent filler left out, see above)
    unknown: frozenset[str]  # distinctive terms no chunk contains
    concepts: frozenset[str]  # absent concepts that are ordinary English ("lyrics")
    max_idf: float  # the IDF of a term with df = 0 in this index
    names: frozenset[str] = frozenset()  # distinctive absent words written like names: AWQ
    total: float = 1.0  # the IDFs of all the question's terms, absent ones at max_idf
    acronyms: tuple[tuple[str, str], ...] = ()  # (term, word) of absent acronyms: MLP

    def resolved(self, papers: Mapping[str, StoredPaper]) -> dict[str, frozenset[str]]:
        """Each paper -> the absent acronyms its text spells out ("MLP": "multilayer
        perceptron"): no word it lacks, and no sign the question is off-corpus."""
        return {pid: frozenset(t for t, word in self.acronyms
                               if spelled_out(word, f"{p.title} {p.abstract}"))
                for pid, p in papers.items()} if self.acronyms else {p: frozenset() for p in papers}


def term_stats(query_terms, lex, question: str = "") -> TermStats:
    """Each distinct query term's IDF in the index, and the question's absent words by
    kind (:func:`rag.absence.absent_words` on ``question`` as written)."""
    if lex is None:
        return TermStats({t: 1.0 for t in query_terms}, frozenset(), frozenset(), 1.0,
                         total=float(len(set(query_terms))) or 1.0)
    max_idf = float(lex.idf("\x00"))  # "\x00" is never a term: the IDF of df = 0
    absent = absent_words(question, lex.doc_freq)
    unknown = frozenset(a.term for a in absent if a.distinctive)
    concepts = frozenset(a.term for a in absent if a.concept and not a.distinctive)
    weights = {t: lex.idf(t) for t in dict.fromkeys(query_terms)}
    total = sum(weights.values()) or 1.0
    kept = unknown | concepts
    weights = {t: w for t, w in weights.items() if lex.doc_freq(t) > 0 or t in kept}
    return TermStats(weights, unknown, concepts, max_idf,
                     frozenset(a.term for a in absent if a.name and a.distinctive), total,
                     tuple((a.term, a.word) for a in absent if is_acronym(a.word)))


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
      the paper (its title) contains; ``coverage_rel``: the coverage minus the best
      candidate's (:func:`rag.retrieve.retrievers.relative`);
    - ``missing_max_idf``: the IDF of the most distinctive question term the paper
      lacks, over the index's largest IDF (0: it lacks none);
    - ``unknown_share`` (question-level): the IDF share of the question's terms that no
      indexed chunk contains and that are distinctive (names, rare terms);
      ``concept_share``: the same for absent concepts that are ordinary English
      ("lyrics": a near miss often hinges on one, a paraphrase never should);
      ``unknown_name``: a distinctive absent word is written like a name.
    """

    FEATURES = ("coverage", "coverage_rel", "title_coverage", "missing_max_idf")
    QUESTION_FEATURES = ("unknown_share", "concept_share", "unknown_name")

    def __init__(self, lex):
        self.lex = lex

    def features(self, query: Query, papers: Mapping[str, StoredPaper]) -> dict[str, Features]:
        stats = term_stats(query.terms, self.lex, query.text)
        weights = stats.weights
        resolved = stats.resolved(papers)
        spelled = frozenset().union(*resolved.values())
        share = stats.max_idf / stats.total
        question = {"unknown_share": len(stats.unknown - spelled) * share,
                    "concept_share": len(stats.concepts - spelled) * share,
                    "unknown_name": 1.0 if stats.names - spelled else 0.0}
        out = {}
        for pid, paper in papers.items():
            present, in_title = paper_terms(paper.title, paper.abstract)
            present = present | resolved[pid]
            out[pid] = {
                "coverage": coverage(weights, present),
                "title_coverage": coverage(weights, in_title),
                "missing_max_idf": max((w for t, w in weights.items() if t not in present),
                                       default=0.0) / stats.max_idf,
                **question,
            }
        rel = relative({pid: f["coverage"] for pid, f in out.items()})
        for pid, f in out.items():
            f["coverage_rel"] = rel[pid]
        return out


def title_in_question(title: str, question_norm: str, question: str = "") -> bool:
    """Whether the question names the paper: its whole normalized title (3 words or
    more: "Summary" and "Reply" are too common), or the name before the title's colon
    when that name is written like one ("GPipe: Efficient Training ..." for "Which paper
    proposes GPipe?"; 1 to 3 words, 4 characters or more, one of them like AWQ, BigCodeBench
    or GPT4o), occurs word for word in the question.

    >>> title_in_question("GPipe: Efficient Training of Giant Neural Networks",
    ...                   normalize_title("Which paper proposes GPipe?"))
    True
    >>> q = "Which simulator lets a robot learn at home?"
    >>> title_in_question("HoME: a Household Multimodal Environment", normalize_title(q), q)
    False
    """
    padded = f" {question_norm} "
    norm = normalize_title(title)
    if len(norm.split()) >= 3 and f" {norm} " in padded:
        return True
    head, colon, _ = title.partition(":")
    names = WORD.findall(head)
    if not (bool(colon) and 1 <= len(names) <= 3 and len(head.strip()) >= 4 and any(
            NAME_LIKE.match(n) for n in names) and f" {normalize_title(head)} " in padded):
        return False
    # A name made of English words ("HoME", "GAIA", "Being-ahead") is named only when
    # written as the name: "a robot at home" does not ask for HoME.
    return not all(is_common(n) for n in names) or bool(re.search(
        rf"(?<!\w){re.escape(head.strip())}(?!\w)", question or head))


def absent(question: str, lex, papers: Sequence[StoredPaper] = ()) -> list[Absent]:
    """The question's words that no chunk of the lexical index ``lex`` contains, each
    with its kind (:class:`rag.absence.Absent`): what an abstention can name ("none of
    the indexed papers mentions NVMe"). An acronym that one of ``papers`` (the papers
    shown) spells out is not absent: "MLP" for "multilayer perceptron"."""
    if lex is None:
        return []
    return [a for a in absent_words(question, lex.doc_freq) if not (is_acronym(a.word) and any(
        spelled_out(a.word, f"{p.title} {p.abstract}") for p in papers))]
