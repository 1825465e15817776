"""Metric functions: pure, no I/O, one question at a time.

Retrieval works at paper level: ``ranked`` is the list of retrieved paper keys,
best first (a paper counts once, at its first rank), and ``gold`` the set of
paper keys that answer the question. A metric that does not apply to a question
returns ``None`` (e.g. recall of a question with no gold paper), and aggregation
leaves it out rather than counting it as zero.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence


def dedupe(ranked: Iterable[str]) -> list[str]:
    """Keep each key at its first (best) rank."""
    seen: set[str] = set()
    out = []
    for key in ranked:
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


# --- retrieval ------------------------------------------------------------------------
def hit_at(ranked: Sequence[str], gold: set[str], k: int) -> float | None:
    """1 when any gold paper is in the top ``k``."""
    if not gold:
        return None
    return 1.0 if any(key in gold for key in dedupe(ranked)[:k]) else 0.0


def recall_at(ranked: Sequence[str], gold: set[str], k: int) -> float | None:
    """Share of the gold papers found in the top ``k``."""
    if not gold:
        return None
    return len(set(dedupe(ranked)[:k]) & gold) / len(gold)


def mrr_at(ranked: Sequence[str], gold: set[str], k: int) -> float | None:
    """1/rank of the first gold paper in the top ``k`` (0 when none)."""
    if not gold:
        return None
    for i, key in enumerate(dedupe(ranked)[:k], start=1):
        if key in gold:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: set[str], k: int) -> float | None:
    """Binary-relevance nDCG@k (gains 1/log2(rank+1), ideal: every gold paper on top)."""
    if not gold:
        return None
    dcg = sum(1.0 / math.log2(i + 1)
              for i, key in enumerate(dedupe(ranked)[:k], start=1) if key in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / ideal


def retrieval_metrics(ranked: Sequence[str], gold: set[str]) -> dict[str, float | None]:
    """The retrieval metrics of one question (all None for a question without gold)."""
    return {
        "hit@1": hit_at(ranked, gold, 1),
        "hit@5": hit_at(ranked, gold, 5),
        "recall@5": recall_at(ranked, gold, 5),
        "recall@10": recall_at(ranked, gold, 10),
        "mrr@10": mrr_at(ranked, gold, 10),
        "ndcg@10": ndcg_at(ranked, gold, 10),
    }


# --- citations ------------------------------------------------------------------------
def citation_metrics(cited: Sequence[str], gold: set[str], sources: set[str]) -> dict:
    """Citations against the gold papers and against the sources the answerer was given.

    ``cited`` are the cited paper keys in citation order; ``sources`` the keys of
    the retrieved papers the answer was built from. An invented citation is one
    that points outside ``sources``: it must never happen.
    """
    cited = dedupe(cited)
    good = [c for c in cited if c in gold]
    return {
        "citation_precision": len(good) / len(cited) if cited and gold else None,
        "citation_recall": len(good) / len(gold) if gold else None,
        "invented_citation_rate": (sum(c not in sources for c in cited) / len(cited)
                                   if cited else None),
    }


# --- abstention (LitQA2 style) --------------------------------------------------------
def abstention_metrics(cited: Sequence[str], gold: set[str], abstained: bool) -> dict:
    """Abstention is neither right nor wrong; answering an unanswerable question is wrong.

    ``correct``: answered and a cited paper is gold (for an answerable question).
    ``top_citation_correct``: the stricter reading, the first citation is gold.
    Aggregated: accuracy = correct / all questions, precision = correct / answered.
    """
    answerable = bool(gold)
    cited = dedupe(cited)
    correct = answerable and not abstained and any(c in gold for c in cited)
    top = answerable and not abstained and bool(cited) and cited[0] in gold
    return {
        "answered": 0.0 if abstained else 1.0,
        "correct": 1.0 if correct else 0.0,
        "top_citation_correct": 1.0 if top else 0.0,
        "correct_abstention": (1.0 if abstained else 0.0) if not answerable else None,
        "false_abstention": (1.0 if abstained else 0.0) if answerable else None,
    }


# --- answer text ----------------------------------------------------------------------
def normalize_text(text: str) -> str:
    """Casefold, fold Unicode compatibility forms (x vs ×) and collapse whitespace."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


def contains_all(answer_text: str, facts: Sequence[str]) -> float | None:
    """1 when every key fact occurs in the answer (normalized); None without facts."""
    if not facts:
        return None
    text = normalize_text(answer_text)
    return 1.0 if all(normalize_text(f) in text for f in facts) else 0.0


def key_facts(answer_text: str, facts: Sequence[str], abstained: bool) -> float | None:
    """:func:`contains_all`, except that an abstention scores 0: its text names the
    closest papers, which may contain a fact, but it does not answer."""
    if not facts:
        return None
    return 0.0 if abstained else contains_all(answer_text, facts)


def word_count(text: str) -> int:
    return len(re.findall(r"\S+", text))


# --- aggregation ----------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    vals = sorted(values)
    if not vals:
        return None
    pos = (len(vals) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# --- the issue-11 bars: metrics by subtype ---------------------------------------------
BARS = {  # metric -> (bar, "min" or "max"): issue 11's, tightened and extended by issue 21's
    "lookup_para_hit@1": (0.85, "min"), "lookup_para_hit@5": (0.95, "min"),
    "lookup_kw_hit@1": (0.98, "min"), "multi_recall@10": (0.95, "min"),
    "lookup_gap_hit@1": (0.80, "min"), "lookup_gap_hit@5": (0.95, "min"),
    "lookup_gap_false_abstention": (0.05, "max"), "two_part_key_facts": (0.80, "min"),
    "false_abstention": (0.03, "max"), "unanswerable_abstention": (0.70, "min"),
    "followup_switch_new_topic": (0.90, "min"), "followup_key_facts": (0.80, "min"),
    "invented_citation_rate": (0.0, "max"),
}


def switch_answered_from_new_topic(record: dict) -> float | None:
    """1 when a follow-up's answer comes from the last turn's gold paper: its first
    citation, or its first retrieved paper when it cites none (an abstention scores 0)."""
    if record.get("abstained"):
        return 0.0
    first = (record.get("cited") or record.get("retrieved") or [None])[0]
    return None if first is None else (1.0 if first.get("gold") else 0.0)


def bar_metrics(records: Sequence[dict], info: dict[str, dict] | None = None) -> dict:
    """{metric: {"value", "n"}} for the bars, from per-question records.

    A record's ``subtype`` and ``switch`` come from the record itself or from ``info``
    (question id -> {"subtype", "switch"}, e.g. read from the dataset).
    """
    info = info or {}
    groups: dict[str, list[float]] = {name: [] for name in BARS}

    def add(name: str, value) -> None:
        if value is not None:
            groups[name].append(float(value))

    for r in records:
        extra = info.get(r["id"], {})
        subtype = r.get("subtype") or extra.get("subtype") or ""
        switch = r.get("switch", extra.get("switch", False))
        m = r["metrics"]
        if r["type"] == "lookup" and subtype in ("para", "kw", "gap"):
            add(f"lookup_{subtype}_hit@1", m.get("hit@1"))
            if subtype in ("para", "gap"):
                add(f"lookup_{subtype}_hit@5", m.get("hit@5"))
            if subtype == "gap":
                add("lookup_gap_false_abstention", m.get("false_abstention"))
        if subtype == "two_part":
            add("two_part_key_facts", m.get("key_facts"))
        if r["type"] == "multi":
            add("multi_recall@10", m.get("recall@10"))
        add("false_abstention", m.get("false_abstention"))
        if r["type"] == "unanswerable":
            add("unanswerable_abstention", m.get("correct_abstention"))
        if r["type"] == "followup":
            if switch:
                add("followup_switch_new_topic", switch_answered_from_new_topic(r))
            add("followup_key_facts", m.get("key_facts"))
        add("invented_citation_rate", m.get("invented_citation_rate"))
    return {name: {"value": mean(vals), "n": len(vals)} for name, vals in groups.items()}


def meets_bar(name: str, value: float | None) -> bool | None:
    if value is None:
        return None
    bar, kind = BARS[name]
    return value >= bar if kind == "min" else value <= bar
