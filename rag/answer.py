"""Answerers: turn ranked papers into a short answer with numbered citations.

Sources are numbered per paper, in rank order: [1] is ``hits[0]``. The offline
answerer (:func:`answer_offline`) quotes abstract sentences, each cited; the LLM
answerer (:mod:`rag.llm`) writes a synthesis. Both go through
:func:`check_citations`, so no answer ever carries a number that does not map to
a retrieved paper.

The offline answerer reads a question one of two ways:

- *which paper* ("Which work predicts tidal power two days ahead?", "Is there a
  paper on ...?"): the answer is the paper, so it gives the title, what the paper
  does (its contribution sentence, "We propose X, ...") and its headline result
  (the sentence with a figure or a finding, "X cuts the error by 23%"), not the
  sentences that merely restate the question;
- *detail* ("What speedup does GQSA get over 2:4 pruning?", and every follow-up):
  the sentences that best match what was asked, one with a figure first when the
  question asks for one.

Sentences are matched on stemmed terms (:func:`rag.text.terms`). A question term
weighs its IDF in the index (``weights``, from the caller) times its rarity among the
abstract's sentences: the paper's topic words, present in most of its sentences,
do not decide which sentence answers, the rarer asked-for words do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rag.absence import Absent
from rag.text import sentences, terms
from rag.types import Answer, Citation, Hit

MAX_PAPERS = 3
SECOND_PAPER_GAP = 0.06
GIST_WORDS = 30  # an abstention's one-line gist of a closest paper

# The answer is a paper: "Which work ...", "What method ...", "Is there a ...",
# "Looking for the paper ...". (This shapes the answer only; it never decides whether a
# turn is a follow-up.)
_WHICH = re.compile(
    r"^\W*(?:(?:and|so|ok|okay|then|also|now|separately)\W+)*(?:"
    r"(?:which|what)\s+(?:[\w'-]+\s+){0,3}?(?:papers?|works?|stud(?:y|ies)|articles?|methods?|"
    r"models?|systems?|approach(?:es)?|frameworks?|benchmarks?|datasets?|techniques?|"
    r"architectures?|algorithms?|tools?|resources?|corpus|corpora|agents?|networks?|releases?|"
    r"surveys?|projects?|librar(?:y|ies)|engines?|pipelines?|schemes?|recipes?|bots?|"
    r"kernels?|compilers?|designs?|simulators?|environments?|suites?|platforms?)\b"
    r"|(?:is|are)\s+there\b|(?:i'?m\s+)?looking\s+for\b|find\s+(?:me\s+)?(?:the|a|an)\b"
    r"|name\s+(?:the|a)\b)", re.I)
# A second clause that asks a detail: "..., and what do they measure?"
_DETAIL_CLAUSE = re.compile(
    r"(?:,|\band\b|;)\s*(?:and\s+)?(?:what|how|which|where|when|who|whom|whose|why|does|do|did|"
    r"is|are|was|were|can)\b(?P<clause>.*)$", re.I)
# The question wants a figure: "how much faster", "what accuracy", "how many tasks".
# The second of two questions joined by "and": "..., and how much faster is it?" (the
# wh-word, or an auxiliary that opens a yes/no question, right after the "and").
_SECOND_QUESTION = re.compile(
    r"(?:,\s*|\s+)(?:and|;)\s+(?P<clause>(?:what|how|which|where|when|who|whose|why|does|"
    r"do|did|is|are|was|were|can)\b.*)$", re.I)
_ASKS_FIGURE = re.compile(
    r"\b(?:how\s+(?:much|many|fast|large|long|big|well|often|close|far|small|few|accurate|"
    r"good)|by\s+how|what\s+(?:\w+\s+){0,3}?(?:fraction|percentage|share|proportion|size|"
    r"accuracy|score|speed-?up|error|rate|f1|index|improvement|gain|reduction|perplexity|"
    r"bleu|number|count|cost|latency|throughput|success|win-?rate|auc|map\d*|recall|"
    r"precision)|number\s+of|speed-?ups?|faster|slower|percent|count)\b", re.I)
# A figure in a sentence: 23%, 2.8x, 3 times, 10-fold, 0.792, 1,050, "by 12".
_FIGURE = re.compile(
    r"\d(?:[\d.,]*\d)?\s?(?:%|x\b|×|times\b|-?fold\b|pp\b|points?\b)|\b\d+\.\d+\b|"
    r"\b\d{1,3}(?:,\d{3})+\b|\b(?:by|of|to|up to|over|than)\s+\d", re.I)
_RESULT = re.compile(
    r"\b(?:outperform|surpass|improv|reduc|achiev|speeds?[- ]?up|faster|better|"
    r"state-of-the-art|sota|gains?\b|boost|exceed|reach|attain|lower|higher|increas|decreas|"
    r"accelerat|rival|beat|saves?\b|saving|cuts?\b|halv|doubl)\w*|"
    r"\b(?:show|find|found|reveal|demonstrat|observ|indicat|suggest|confirm)\w*\s+(?:that|how)\b|"
    r"\bresults?\b", re.I)
_CONTRIBUTION = re.compile(
    r"\b(?:we|this\s+(?:paper|work|study|article|report)|here|our\s+(?:work|paper))\b[^.;]{0,60}?"
    r"\b(?:propos|present|introduc|develop|design|buil[dt]|releas|construct|creat|describ|"
    r"formulat|curat|collect|offer|contribut|devis|establish|explor|investigat|stud)\w*|"
    r"\b(?:is|are)\s+(?:proposed|introduced|presented)\b|\b(?:called|named|dubbed)\b", re.I)
_NUMBER = re.compile(r"\b\d")  # a bare count ("45 tasks") answers "how many" too
# A coined name: NanoFlow, DEPS, GPT4, vote-k style names with capitals or digits inside.
_NAME = re.compile(r"\b(?:[A-Z][a-z]+[A-Z]\w*|[A-Z]{2,}\w*|[A-Za-z]+\d\w*)\b")


def asks_which_paper(question: str) -> bool:
    """Whether the question's answer is a paper ("Which work ...?", "Is there a ...?").

    >>> asks_which_paper("Which work predicts tidal stream power two days ahead?")
    True
    >>> asks_which_paper("How much faster is GQSA than 2:4 pruning?")
    False
    """
    return bool(_WHICH.search(question))


# --- sentence picking -------------------------------------------------------------------

class _Abstract:
    """One abstract's sentences, their stemmed terms, and the question's term weights."""

    def __init__(self, abstract: str, question: str, weights: Mapping[str, float] | None):
        self.sentences = sentences(abstract)
        self.terms = [set(terms(s)) for s in self.sentences]
        self.q_terms = set(terms(question))
        n = len(self.sentences) or 1
        # weight = IDF in the index x rarity among this abstract's sentences. Example: an
        # abstract of 8 sentences, "discontinu" in 6 of them (the topic) -> ln(1 + 8/6) =
        # 0.85; "concord" in 1 -> ln(1 + 8/1) = 2.20: the sentence with the concordance
        # index wins over the ones that restate what the paper is about.
        self.w = {}
        for t in self.q_terms:
            sf = sum(t in ts for ts in self.terms)
            idf = (weights or {}).get(t, 1.0)
            self.w[t] = idf * math.log(1 + n / max(sf, 1))
        self.total = sum(self.w.values()) or 1.0

    def __len__(self) -> int:
        return len(self.sentences)

    def match(self, i: int, q_terms: set[str] | None = None) -> float:
        """Weighted share (0..1) of the question's terms sentence ``i`` contains."""
        q = self.q_terms if q_terms is None else q_terms
        total = sum(self.w.get(t, 0.0) for t in q) or 1.0
        return sum(self.w.get(t, 0.0) for t in q & self.terms[i]) / total

    def novelty(self, i: int) -> float:
        """Share of sentence ``i``'s terms that the question does not already say."""
        ts = self.terms[i]
        return len(ts - self.q_terms) / len(ts) if ts else 0.0

    def length_penalty(self, i: int) -> float:
        return W.long_sentence if len(self.sentences[i]) > 400 else 0.0


@dataclass(frozen=True)
class SentenceWeights:
    """How the offline answerer scores an abstract's sentences (added to the weighted
    share of the question's terms a sentence holds, 0..1, or to a figure's 1).

    Set by hand, then measured by ``python -m eval.sentence_weights`` (each weight set
    to 0 and doubled; key facts in the offline answers of the tune split's lookups,
    details and multi-paper questions, retrieval held fixed). 2026-12-02, MiniLM, 328
    questions, key facts 0.753 with the hand weights:

    ====================  =====  =====  ===========================================
    weight                 x0     x2    what it does
    ====================  =====  =====  ===========================================
    detail_figure         0.729  0.753  a figure when the question asks for one
    detail_result         0.744  0.753  a finding ("outperforms", "reduces")
    detail_position       0.753  0.750  earlier sentences first
    does_contribution     0.729  0.753  "we propose X" is what the paper does
    does_match            0.744  0.765  ... the one that matches the question
    does_name             0.753  0.759  ... that names the method
    does_position         0.774  0.753  ... the first such sentence
    found_result          0.750  0.753  the headline result is a finding
    found_match           0.750  0.750  ... that matches the question
    found_novelty         0.750  0.753  ... and says something new
    found_after           0.750  0.753  ... after the contribution sentence
    long_sentence         0.756  0.747  a 400+ character sentence is a last resort
    ====================  =====  =====  ===========================================

    Only ``does_position`` gained when changed: at 0 (the contribution sentence that
    best matches the question, wherever it stands) key facts rose to 0.774, and is set
    so; doubling ``does_match`` on top of it gained nothing more. The rest sit on a flat
    optimum within 0.03 and keep their hand values.
    """

    detail_figure: float = 0.5
    detail_result: float = 0.1
    detail_position: float = 0.01
    does_contribution: float = 1.0
    does_match: float = 0.5
    does_name: float = 0.1
    does_position: float = 0.0
    found_result: float = 0.7
    found_match: float = 0.4
    found_novelty: float = 0.3
    found_after: float = 0.1
    long_sentence: float = 0.3


W = SentenceWeights()


def _best(indices: Iterable[int], score) -> int | None:
    indices = list(indices)
    return max(indices, key=lambda i: (score(i), -i)) if indices else None


def _figure(sentence: str) -> float:
    """1 for a result figure (23%, 2.8x, 0.792), 0.5 for a bare count (45 tasks), else 0."""
    return 1.0 if _FIGURE.search(sentence) else 0.5 if _NUMBER.search(sentence) else 0.0


def _detail_scores(doc: _Abstract, q_terms: set[str] | None, wants_figure: bool):
    def score(i: int) -> float:
        s = doc.sentences[i]
        return (doc.match(i, q_terms) + (W.detail_figure * _figure(s) if wants_figure else 0.0)
                + W.detail_result * bool(_RESULT.search(s)) - W.detail_position * i
                - doc.length_penalty(i))
    return score


def _does(doc: _Abstract) -> int | None:
    """The contribution sentence: what the paper does ("We propose X, a ...")."""
    def score(i: int) -> float:
        s = doc.sentences[i]
        # Among contribution sentences ("we introduce X", "we also introduce subtasks")
        # the one matching the question; a tie goes to the first (see _best).
        return (W.does_contribution * bool(_CONTRIBUTION.search(s)) + W.does_match * doc.match(i)
                + W.does_name * bool(_NAME.search(s)) - W.does_position * i
                - doc.length_penalty(i))
    return _best(range(len(doc)), score)


def _found(doc: _Abstract, exclude: set[int], after: int) -> int | None:
    """The headline result: a sentence with a figure or a finding, saying something new."""
    def score(i: int) -> float:
        s = doc.sentences[i]
        return (_figure(s) + W.found_result * bool(_RESULT.search(s))
                + W.found_match * doc.match(i) + W.found_novelty * doc.novelty(i)
                + W.found_after * (i > after) - doc.length_penalty(i))
    return _best((i for i in range(len(doc)) if i not in exclude and (
        _FIGURE.search(doc.sentences[i]) or _RESULT.search(doc.sentences[i]))), score)


def pick_sentences(question: str, abstract: str, n: int = 2, *, which: bool | None = None,
                   weights: Mapping[str, float] | None = None) -> list[str]:
    """The abstract sentences that answer the question, in abstract order.

    ``which`` (default: :func:`asks_which_paper`): what the paper does and its headline
    result, plus the sentence for a detail asked in a second clause ("..., and what do
    they measure?"). Otherwise the ``n`` best-matching sentences.
    """
    doc = _Abstract(abstract, question, weights)
    if not len(doc):
        return []
    which = asks_which_paper(question) if which is None else which
    wants_figure = bool(_ASKS_FIGURE.search(question))
    if not which:
        picked = _detail_picks(doc, question, n, wants_figure)
    else:
        does = _does(doc)
        assert does is not None  # the abstract has sentences (checked above)
        picked = [does]
        found = _found(doc, {does}, does)
        if found is None:  # no figure or finding anywhere: the next best match instead
            found = _best((i for i in range(len(doc)) if i != does),
                          _detail_scores(doc, None, False))
        if found is not None:
            picked.append(found)
        clause = _DETAIL_CLAUSE.search(question)
        if clause and terms(clause.group("clause")):
            c_terms = set(terms(clause.group("clause")))
            best = _best((i for i in range(len(doc)) if i not in picked
                          and doc.match(i, c_terms) > 0),
                         _detail_scores(doc, c_terms, bool(_ASKS_FIGURE.search(clause.group(0)))))
            if best is not None:
                picked.append(best)
    return [doc.sentences[i] for i in sorted(picked)]


def _detail_picks(doc: _Abstract, question: str, n: int, wants_figure: bool) -> list[int]:
    """The ``n`` best sentences for a detail question; a two-part question ("What does
    GQSA do, and how much faster is it?") gets the best sentence for each part first, so
    the answer says both, then the best of the rest."""
    parts = two_parts(question)
    picked: list[int] = []
    if parts and n >= 2:
        for part in parts:
            p_terms = set(terms(part)) or None
            score = _detail_scores(doc, p_terms, bool(_ASKS_FIGURE.search(part)))
            best = _best((i for i in range(len(doc)) if i not in picked), score)
            if best is not None:
                picked.append(best)
    score = _detail_scores(doc, None, wants_figure)
    rest = sorted((i for i in range(len(doc)) if i not in picked), key=lambda i: (-score(i), i))
    return (picked + rest)[:n]


def two_parts(question: str) -> tuple[str, str] | None:
    """The two questions of "What does X do, and how much faster is it?" (None: one).

    >>> two_parts("What does GQSA do and how much faster is it than 2:4 pruning?")
    ('What does GQSA do', 'how much faster is it than 2:4 pruning?')
    >>> two_parts("What speedup does GQSA get?") is None
    True
    """
    m = _SECOND_QUESTION.search(question)
    if not m or not terms(question[:m.start()]) or not terms(m.group("clause")):
        return None
    return question[:m.start()].strip(" ,;"), m.group("clause").strip()


def gist(abstract: str, words: int = GIST_WORDS) -> str:
    """One line on what a paper does: its contribution sentence, cut to ``words`` words."""
    doc = _Abstract(abstract, "", None)
    i = _does(doc)
    if i is None:
        return ""
    parts = doc.sentences[i].split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


# --- abstention and missing terms -------------------------------------------------------

def _or_list(items: Sequence[str]) -> str:
    """'A', 'A or B', 'A, B or C'."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def missing_terms_text(words: Sequence[str]) -> str:
    """'None of the indexed papers mentions NVMe or SSD.' ('' when nothing is missing)."""
    if not words:
        return ""
    return f"None of the indexed papers mentions {_or_list(list(words))}."


def named_missing(absent: Sequence[Absent]) -> list[str]:
    """The absent words an answer or an abstention names: the distinctive ones only
    (NVMe, a rare term). An ordinary-English concept ("lyrics", "Warsaw") is often what a
    near miss hinges on, but a paraphrase that Abstracta fails to match uses such words
    too, and "None of the indexed papers mentions Warsaw" under a question the papers do
    answer (in other words) misleads: measured on the tune split, every abstention that
    named one on an answerable question was such a paraphrase."""
    return [a.word for a in absent if a.distinctive]


def abstain_text(hits: Iterable[Hit], absent: Sequence[Absent] = ()) -> str:
    """Why there is no answer: what the question asks that no paper mentions
    (:func:`named_missing`), and what the closest papers do cover (title and a one-line
    gist each)."""
    hits = list(hits)
    missing = missing_terms_text(named_missing(absent))
    lead = f"{missing} " if missing else ""
    if not hits:
        return f"{lead}The indexed papers don't cover this: no paper matched the question."
    lines = [f"{lead}The indexed papers don't cover this question. The closest papers are:"]
    for h in hits[:MAX_PAPERS]:
        line = gist(h.paper.abstract)
        lines.append(f'- "{h.paper.title}"' + (f": {line}" if line else ""))
    return "\n".join(lines)


# --- the offline answer -----------------------------------------------------------------

def answer_offline(question: str, hits: list[Hit], threshold: float, focus: str | None = None,
                   *, absent: Sequence[Absent] = (), weights: Mapping[str, float] | None = None,
                   followup: bool = False) -> Answer:
    """An extractive answer: abstract sentences, each cited [n] (``hits[n-1]``).

    Abstains only when no shown paper is relevant (every ``relevance`` under
    ``threshold``), naming what no paper mentions (``absent``, the question's words no
    indexed paper contains: the concepts among them) and what the closest papers cover.
    Otherwise the first relevant paper answers, with up to two more relevant ones close
    to it; a missing distinctive word (a name, a rare term: never ordinary English) is
    said beside it. ``focus`` is the user's own words when
    ``question`` is a rewritten follow-up (``followup``): sentences are picked for what
    was asked now, as a detail of the paper already being discussed.
    """
    relevant = [(i + 1, h) for i, h in enumerate(hits) if h.relevance >= threshold]
    if not relevant:
        return Answer(question=question, text=abstain_text(hits, absent),
                      abstained=True, citations=(), hits=tuple(hits), answerer="offline")
    asked = focus or question
    which = False if followup else asks_which_paper(asked)
    n_top, top = relevant[0]
    chosen = [(n_top, top)] + [(n, h) for n, h in relevant[1:]
                               if _also_relevant(h, top)][:MAX_PAPERS - 1]
    lines = []
    for j, (n, hit) in enumerate(chosen):
        if j == 0:
            picked = pick_sentences(asked, hit.paper.abstract, 2, which=which, weights=weights)
            lead = f'"{hit.paper.title}" [{n}]'
        else:
            picked = pick_sentences(asked, hit.paper.abstract, 1, which=False, weights=weights)
            lead = f'Also relevant: "{hit.paper.title}" [{n}]'
        body = " ".join(f"{_strip_end(s)} [{n}]." for s in picked)
        lines.append(f"{lead}. {body}")
    checked = check_citations("\n\n".join(lines), hits)
    text = checked.text
    missing = missing_terms_text(named_missing(absent))
    if missing:  # beside the answer, after the check: it cites nothing, by design
        text = f"{text}\n\n{missing}"
    return Answer(question=question, text=text, abstained=False,
                  citations=checked.citations, hits=tuple(hits), answerer="offline")


def _also_relevant(hit: Hit, top: Hit) -> bool:
    """Another relevant paper is cited only when it is about as close to the question as
    the first: relevance saturates near 1 for every on-topic paper, so the cosine gap
    decides. Top cosine 0.66, this one 0.61 -> gap 0.05 <= 0.06, cited; 0.55 -> not."""
    return (top.dense or 0.0) - (hit.dense or 0.0) <= SECOND_PAPER_GAP


def _strip_end(sentence: str) -> str:
    return sentence.rstrip().rstrip(".")


# --- citation check ---------------------------------------------------------------------

class Checked:
    """The result of :func:`check_citations`."""

    def __init__(self, text, citations, removed, unsupported, numbers=0):
        self.text: str = text
        self.citations: tuple[Citation, ...] = citations
        self.removed: int = removed  # [n] numbers that pointed to no source
        self.unsupported: tuple[str, ...] = unsupported
        self.numbers: int = numbers  # every [n] number the text carried, before removal

    @property
    def has_content(self) -> bool:
        """Whether anything but citation marks and punctuation is left: "[1]." has none."""
        from rag.text import CITE

        return any(ch.isalnum() for ch in CITE.sub("", self.text))

    @property
    def supported(self) -> bool:
        """A valid citation, and a statement for it to support (a bare "[1]" is not one)."""
        return bool(self.citations) and self.has_content


def check_citations(text: str, hits: list[Hit]) -> Checked:
    """Keep only [n] that point to a given source; renumber them 1, 2, ... by first use.

    ``[n]`` refers to ``hits[n-1]``. Example with 3 sources: "A [3]. B [7][1]." ->
    [7] points nowhere and is removed (removed=1, numbers=3); [3] is first used, so
    it becomes [1], and [1] becomes [2]: "A [1]. B [2]." with citations 1 ->
    hits[2].paper, 2 -> hits[0].paper. A sentence left with no citation is reported
    in ``unsupported``.
    """
    from rag.text import CITE, citation_numbers, sentences

    by_n = {i + 1: h for i, h in enumerate(hits)}
    order: dict[int, int] = {}
    removed = numbers = 0

    def fix(match: re.Match) -> str:
        nonlocal removed, numbers
        kept = []
        for num in citation_numbers(match.group(1)):
            numbers += 1
            if num in by_n:
                order.setdefault(num, len(order) + 1)
                if order[num] not in kept:
                    kept.append(order[num])
            else:
                removed += 1
        return "".join(f"[{k}]" for k in kept)

    new_text = CITE.sub(fix, text)
    new_text = re.sub(r"(\[\d+\])(?:\s*\1)+", r"\1", new_text)  # "[1][1]" -> "[1]"
    new_text = re.sub(r"[ \t]+([.,;:])", r"\1", new_text)
    new_text = re.sub(r"[ \t]{2,}", " ", new_text).strip()
    citations = tuple(
        Citation(n=new, paper_id=by_n[old].paper.paper_id, title=by_n[old].paper.title)
        for old, new in sorted(order.items(), key=lambda kv: kv[1])
    )
    unsupported = tuple(
        s for para in new_text.split("\n") for s in sentences(para)
        if len(s) > 25 and not CITE.search(s) and not s.rstrip().endswith(":")
    )
    return Checked(new_text, citations, removed, unsupported, numbers)

