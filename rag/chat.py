"""Conversations: history, and whether a turn leans on the previous one.

Retrieval sees one question at a time, so "how much faster is it than 2:4
pruning?" must be searched with its subject. With an LLM the model rewrites it
(:func:`rag.llm.condense`). Offline, the decision is made by evidence, not by word
lists: the turn is searched alone and with the previous turn's subject (the title
of the paper the previous answer cited first), and it is a follow-up when alone it
retrieves weakly and with the subject strongly (:class:`FollowupRule`). "OSWorld
task count" after a GQSA question retrieves OSWorld strongly on its own, so it is
a new question; "how much faster is it?" matches nothing on its own and the GQSA
paper strongly with its title, so it is a follow-up. A turn after an abstention
starts fresh: there is no subject to carry.

The rule's constants are fitted on the ``tune`` split by
``eval/calibrate.py`` (:func:`eval.calibrate.fit_followup`), per embedder, and
stored in ``rag/calibration/<embedder>.json`` under ``"followup"``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from rag.text import WORD, stem, terms
from rag.types import Answer, Hit

if TYPE_CHECKING:
    from rag.retrieve import Filters, Searcher


@dataclass
class Turn:
    question: str
    answer: Answer


@dataclass
class Conversation:
    """The turns so far. One per CLI chat session or browser session, never shared."""

    turns: list[Turn] = field(default_factory=list)
    max_turns: int = 8

    def add(self, question: str, answer: Answer) -> None:
        self.turns.append(Turn(question, answer))
        del self.turns[:-self.max_turns]

    @property
    def last(self) -> Turn | None:
        return self.turns[-1] if self.turns else None

    def subject(self) -> Subject | None:
        """What the next turn may lean on (:func:`subject`)."""
        return subject(self)


@dataclass(frozen=True)
class Subject:
    """What the previous turn was about: the paper its answer cited first."""

    title: str
    paper_id: str = ""  # "" when the previous answer cited nothing (its question is the title)


def subject(conversation: Conversation | None) -> Subject | None:
    """The previous turn's subject: the paper its answer cited first (its question when it
    cited none). None on the first turn and after an abstention, so that the next turn
    starts fresh."""
    last = conversation.last if conversation is not None else None
    if last is None or last.answer.abstained:
        return None
    if last.answer.citations:
        first = last.answer.citations[0]
        return Subject(first.title, first.paper_id)
    return Subject(last.answer.standalone_question or last.question)


def with_subject(question: str, about: str) -> str:
    """The follow-up as retrieval sees it: 'how fast is it? (about: GQSA: ...)'."""
    return f"{question} (about: {about})"


# --- the evidence -----------------------------------------------------------------------

FEATURES = ("relevance", "cosine", "gain", "distinct", "distinct_name")


def named_terms(question: str) -> set[str]:
    """Stemmed terms of the words written as names: a capital after the first word
    ("Cybench", "OSWorld", "ALMA") or letters with digits ("GPT4", "Llama-3").

    >>> sorted(named_terms("And ALMA's BLEU gain over GPT4, did it beat Cybench?"))
    ['alma', 'bleu', 'cybench', 'gpt4']
    """
    found = WORD.findall(question)
    return {stem(w.lower()) for w in found[1:]
            if any(c.isupper() for c in w) or (any(c.isdigit() for c in w)
                                               and any(c.isalpha() for c in w))}


def evidence(alone: list[Hit], joined: list[Hit], question: str, subject_terms: set[str],
             paper_idf) -> dict[str, float]:
    """What the two searches say about a turn, as :class:`FollowupRule` reads it.

    - ``relevance``, ``cosine``: the best relevance and cosine among the papers the turn
      shows when searched alone (a turn that stands on its own retrieves strongly);
    - ``gain``: how much the previous subject raises the best cosine (a turn that cannot
      stand alone gains much);
    - ``distinct``: the rarest question term that the best paper alone contains and the
      subject paper does not, as its paper-level IDF over the largest possible IDF (0..1).
      "And ALMA's BLEU gain?" after a grammar-book paper: "alma" is in one paper of 358,
      ln(1 + 357.5/1.5) / ln(1 + 358.5/0.5) = 5.48 / 6.58 = 0.83: the turn names another
      paper. "How many parameters does it have?": the best paper alone shares only words
      like "how" (in 30 papers: 0.38) with the question, which say nothing;
    - ``distinct_name``: the same over the words written as names (:func:`named_terms`):
      in a small corpus a plain word ("did", in 3 papers) can look as rare as a name.
    """
    top = alone[0] if alone else None
    if top is None:
        return dict.fromkeys(FEATURES, 0.0)
    top_terms = set(terms(f"{top.paper.title} {top.paper.abstract}"))
    extra = [t for t in dict.fromkeys(terms(question))
             if t in top_terms and t not in subject_terms]
    names = named_terms(question)
    best_alone = max((h.dense or 0.0 for h in alone), default=0.0)
    best_joined = max((h.dense or 0.0 for h in joined), default=0.0)
    return {
        "relevance": max(h.relevance for h in alone),
        "cosine": best_alone,
        "gain": best_joined - best_alone,
        "distinct": max((paper_idf(t) for t in extra), default=0.0),
        "distinct_name": max((paper_idf(t) for t in extra if t in names), default=0.0),
    }


def followup_evidence(searcher: Searcher, question: str, about: Subject, k: int | None = None,
                      filters: Filters | None = None, timings: dict | None = None):
    """(features, hits alone, hits with the subject, the question with the subject): the
    (clean) turn searched alone and with the previous subject, and what
    :class:`FollowupRule` decides on (eval/calibrate.py fits the rule on these)."""
    from rag.retrieve import clean_question

    alone = searcher.search(question, k, filters, timings)
    joined_question = with_subject(question, about.title)
    # The joined text is new text (a title appended), so it is cleaned once here.
    joined = searcher.search(clean_question(joined_question), k, filters)
    paper = searcher.store.get_papers([about.paper_id]).get(about.paper_id) \
        if about.paper_id else None
    subject_terms = set(terms(f"{paper.title} {paper.abstract}" if paper else about.title))
    ratio = paper_idf_ratio(searcher.lexical, searcher.paper_count)
    feats = evidence(alone, joined, question, subject_terms, ratio)
    return feats, alone, joined, joined_question


def paper_idf_ratio(lex, n_papers: int):
    """term -> its IDF over papers (not chunks) divided by the largest possible IDF.

    Paper level, because a name repeated in the five chunks of its one paper is as rare
    as a name can be, while a word in five different papers is not.
    """
    top = math.log1p((n_papers + 0.5) / 0.5) if n_papers else 1.0

    def ratio(term: str) -> float:
        if lex is None or not lex.doc_freq(term):
            return 1.0
        df = len(set(lex.papers(lex.rows_of(term))))
        return math.log1p((n_papers - df + 0.5) / (df + 0.5)) / top
    return ratio


@dataclass(frozen=True)
class FollowupRule:
    """A logistic rule over :func:`evidence`: the turn is a follow-up when
    z = intercept + sum(coef * feature) > 0.

    Worked example with the defaults below: "how many parameters does it have?" alone:
    relevance 0.59, cosine 0.35, gain 0.39, distinct 0.38 -> z = 4 - 2*0.59 - 4*0.35 +
    4*0.39 - 6*0.38 = 0.70 > 0: a follow-up. "And ALMA's BLEU gain?": relevance 0.89,
    cosine 0.29, gain 0.35, distinct 0.83 -> z = 4 - 1.78 - 1.16 + 1.40 - 4.98 = -2.52:
    a new question.
    """

    coef: tuple[tuple[str, float], ...] = (
        ("relevance", -2.0), ("cosine", -4.0), ("gain", 4.0), ("distinct", -6.0))
    intercept: float = 4.0
    fitted: bool = False

    def z(self, feats: dict[str, float]) -> float:
        return self.intercept + sum(c * feats.get(n, 0.0) for n, c in self.coef)

    def is_followup(self, feats: dict[str, float]) -> bool:
        return self.z(feats) > 0


@lru_cache(maxsize=8)
def load_followup_rule(embedder: str) -> FollowupRule:
    """The fitted rule from ``rag/calibration/<embedder>.json`` (``"followup"``), else the
    defaults."""
    from rag.retrieve.relevance import CALIBRATION_DIR

    try:
        data = json.loads((CALIBRATION_DIR / f"{embedder}.json").read_text(encoding="utf-8"))
        rule = data["followup"]
        coef = tuple((n, float(rule["coef"][n])) for n in FEATURES)
        return FollowupRule(coef, float(rule["intercept"]), True)
    except (OSError, ValueError, KeyError, TypeError):
        return FollowupRule()
