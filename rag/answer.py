"""Answerers: turn ranked papers into a short answer with numbered citations.

Sources are numbered per paper, in rank order: [1] is ``hits[0]``. The offline
answerer picks the abstract sentences that best match the question; the LLM
answerer (:mod:`rag.llm`) writes a synthesis. Both go through
:func:`check_citations`, so no answer ever carries a number that does not map to
a retrieved paper.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rag.types import Answer, Citation, Hit

_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|et al|etc|vs|cf|Fig|Eq|approx)\.$", re.I)
_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_STOP = frozenset("""a an the of in on for to and or with by from as at is are was were be been
this that these those it its we our their they which what who whom how why when where does do
did can could would should paper papers work method methods approach propose proposed present
presents using use used based about any there some more most than into over such also between
one two new""".split())
_CONTRIBUTION = re.compile(r"\b(we (propose|present|introduce|develop)|this paper (presents|proposes|introduces)|"
                           r"we find|we show|results (show|demonstrate)|outperform)", re.I)

MAX_PAPERS = 3
SECOND_PAPER_GAP = 0.06


def split_sentences(text: str) -> list[str]:
    """Sentences of an abstract (keeps "e.g." and "et al." inside their sentence)."""
    parts = _SENT_END.split(text.strip())
    out: list[str] = []
    for part in parts:
        if out and _ABBREV.search(out[-1]):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return [s.strip() for s in out if s.strip()]


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1]


_ASKS_NUMBER = re.compile(
    r"\b(how (much|many|fast|large|long|big|well|often)|by how|what (fraction|percentage|share|"
    r"proportion|size|accuracy|score)|number of|speed-?ups?|faster|slower|accuracy|percent)\b", re.I)
_HAS_NUMBER = re.compile(r"\d")


def _sentence_score(sentence: str, q_words: set[str], position: int, wants_number: bool) -> float:
    words = set(content_words(sentence))
    overlap = sum(1.0 + (len(w) > 6) for w in q_words if w in words or any(
        x.startswith(w[:6]) for x in words if len(w) > 6))
    bonus = 0.6 if _CONTRIBUTION.search(sentence) else 0.0
    if wants_number and _HAS_NUMBER.search(sentence):
        bonus += 2.0  # "how much faster?" is answered by the sentence with the figure
    return overlap + bonus - 0.05 * position - (0.5 if len(sentence) > 400 else 0.0)


def pick_sentences(question: str, abstract: str, n: int) -> list[str]:
    """The ``n`` abstract sentences that best answer the question, in abstract order."""
    sentences = split_sentences(abstract)
    q_words = set(content_words(question))
    wants_number = bool(_ASKS_NUMBER.search(question))
    ranked = sorted(range(len(sentences)), key=lambda i: -_sentence_score(
        sentences[i], q_words, i, wants_number))[:n]
    return [sentences[i] for i in sorted(ranked)]


def abstain_text(hits: Iterable[Hit]) -> str:
    hits = list(hits)
    if not hits:
        return "The indexed papers don't cover this: no paper matched the question."
    names = "; ".join(f'"{h.paper.title}"' for h in hits[:3])
    return (f"The indexed papers don't cover this question. The closest papers are {names}, "
            "but none of them answers it.")


def answer_offline(question: str, hits: list[Hit], threshold: float,
                   focus: str | None = None) -> Answer:
    """An extractive answer: the best-matching abstract sentences, each cited.

    ``focus`` is the user's own words when ``question`` is a rewritten follow-up
    (sentences are picked for what was asked now, not for the previous subject).
    Abstains (``abstained=True``) when the best paper's relevance is under the
    threshold, naming the closest papers instead of inventing an answer.
    """
    if not hits or hits[0].relevance < threshold:
        return Answer(question=question, text=abstain_text(hits), abstained=True, citations=(),
                      hits=tuple(hits), answerer="offline")
    # The top paper always; others only when they are relevant in their own right and
    # close to the top one (a weak third paper adds noise, not evidence).
    chosen = [hits[0]] + [h for h in hits[1:MAX_PAPERS] if _also_relevant(h, hits[0], threshold)]
    lines = []
    for i, hit in enumerate(chosen):
        n = hit.rank
        picked = pick_sentences(focus or question, hit.paper.abstract, 2 if i == 0 else 1)
        lead = f'"{hit.paper.title}" [{n}]' if i == 0 else f'Also relevant: "{hit.paper.title}" [{n}]'
        body = " ".join(f"{_strip_end(s)} [{n}]." for s in picked)
        lines.append(f"{lead}. {body}")
    text = "\n\n".join(lines)
    checked = check_citations(text, hits)
    return Answer(question=question, text=checked.text, abstained=False,
                  citations=checked.citations, hits=tuple(hits), answerer="offline")


def _also_relevant(hit: Hit, top: Hit, threshold: float) -> bool:
    """A second paper is cited only when it is about as close to the question as the first.

    Relevance saturates near 1 for every on-topic paper, so the cosine gap decides:
    top cosine 0.66, this one 0.61 -> gap 0.05 <= 0.06, cited; 0.55 -> not cited.
    """
    if hit.relevance < max(threshold, 0.8):
        return False
    return (top.dense or 0.0) - (hit.dense or 0.0) <= SECOND_PAPER_GAP


def _strip_end(sentence: str) -> str:
    return sentence.rstrip().rstrip(".")


# --- citation check ---------------------------------------------------------------------

class Checked:
    """The result of :func:`check_citations`."""

    def __init__(self, text, citations, removed, unsupported):
        self.text: str = text
        self.citations: tuple[Citation, ...] = citations
        self.removed: int = removed
        self.unsupported: tuple[str, ...] = unsupported

    @property
    def supported(self) -> bool:
        return bool(self.citations)


def check_citations(text: str, hits: list[Hit]) -> Checked:
    """Keep only [n] that point to a given source; renumber them 1, 2, ... by first use.

    ``[n]`` refers to ``hits[n-1]``. Example with 3 sources: "A [3]. B [7][1]." ->
    [7] points nowhere and is removed (removed=1); [3] is first used, so it becomes
    [1], and [1] becomes [2]: "A [1]. B [2]." with citations 1 -> hits[2].paper,
    2 -> hits[0].paper. A sentence left with no citation is reported in
    ``unsupported``.
    """
    by_n = {i + 1: h for i, h in enumerate(hits)}
    order: dict[int, int] = {}
    removed = 0

    def fix(match: re.Match) -> str:
        nonlocal removed
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", match.group(1))]
        kept = []
        for num in nums:
            if num in by_n:
                order.setdefault(num, len(order) + 1)
                if order[num] not in kept:
                    kept.append(order[num])
            else:
                removed += 1
        return "".join(f"[{k}]" for k in kept)

    new_text = _CITE.sub(fix, text)
    new_text = re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", new_text)  # "[1][1]" -> "[1]"
    new_text = re.sub(r"[ \t]+([.,;:])", r"\1", new_text)
    new_text = re.sub(r"[ \t]{2,}", " ", new_text).strip()
    citations = tuple(
        Citation(n=new, paper_id=by_n[old].paper.paper_id, title=by_n[old].paper.title)
        for old, new in sorted(order.items(), key=lambda kv: kv[1])
    )
    unsupported = tuple(
        s for para in new_text.split("\n") for s in split_sentences(para)
        if len(s) > 25 and not _CITE.search(s) and not s.rstrip().endswith(":")
    )
    return Checked(new_text, citations, removed, unsupported)

