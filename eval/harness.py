"""Load a question set, resolve its gold papers in the index, run every question.

The dataset is JSON Lines, one question per line (see eval/datasets/README.md)::

    {"id": "q1", "type": "lookup", "question": "...", "gold_titles": ["..."],
     "answer": ["3.7x"], "turns": ["earlier question", "..."]}

Gold titles are matched to indexed papers with :func:`rag.normalize_title`,
the function the index uses, so "M$^3$ViT" and "M^3ViT" meet.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eval import metrics as M
from rag import AbstractaError

DATASETS = Path(__file__).parent / "datasets"
DEFAULT_DATASET = DATASETS / "test.jsonl"  # the held-out split: what the README quotes


class DatasetError(AbstractaError):
    """A dataset line cannot be read, or its gold papers are not in the index."""


@dataclass(frozen=True)
class Question:
    id: str
    type: str
    question: str
    gold_titles: tuple[str, ...] = ()
    gold_ids: tuple[str, ...] = ()
    answer: tuple[str, ...] = ()
    turns: tuple[str, ...] = ()  # earlier turns only (the last turn is ``question``)
    subtype: str = ""  # e.g. "para" / "kw" for lookups
    switch: bool = False  # follow-up: the last turn changes topic
    turn_gold_titles: tuple[tuple[str, ...], ...] = ()  # follow-up: gold of every turn
    missing: tuple[str, ...] = ()  # unanswerable: the asked terms no paper has

    @property
    def answerable(self) -> bool:
        return bool(self.gold_titles or self.gold_ids)


def _str_list(obj: dict, key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DatasetError(f"{where}: '{key}' must be a list of non-empty strings.")
    return tuple(v.strip() for v in value)


def parse_line(text: str, where: str) -> Question:
    """One dataset line -> Question; DatasetError naming ``where`` when it is wrong."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}.")
    for key in ("id", "question"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise DatasetError(f"{where}: missing or empty '{key}' (a string).")
    qtype = obj.get("type", "")
    if not isinstance(qtype, str):
        raise DatasetError(f"{where}: 'type' must be a string.")
    if "gold_titles" not in obj and "gold_ids" not in obj:
        raise DatasetError(f"{where}: needs 'gold_titles' or 'gold_ids' (an empty list for an "
                           "unanswerable question).")
    question = obj["question"].strip()
    turns = _str_list(obj, "turns", where)
    if turns:
        if turns[-1] != question:
            raise DatasetError(f"{where}: the last of 'turns' must equal 'question'.")
        turns = turns[:-1]
    subtype = obj.get("subtype") or ""
    if not isinstance(subtype, str):
        raise DatasetError(f"{where}: 'subtype' must be a string.")
    switch = obj.get("switch", False)
    if not isinstance(switch, bool):
        raise DatasetError(f"{where}: 'switch' must be true or false.")
    turn_gold = obj.get("turn_gold_titles") or []
    if not isinstance(turn_gold, list) or not all(
            isinstance(t, list) and all(isinstance(x, str) and x.strip() for x in t)
            for t in turn_gold):
        raise DatasetError(f"{where}: 'turn_gold_titles' must be a list of lists of titles "
                           "(one list per turn).")
    turn_gold = tuple(tuple(x.strip() for x in t) for t in turn_gold)
    if turn_gold and len(turn_gold) != len(turns) + 1:
        raise DatasetError(f"{where}: 'turn_gold_titles' needs one list per turn "
                           f"({len(turns) + 1}), not {len(turn_gold)}.")
    return Question(
        id=obj["id"].strip(),
        type=qtype.strip() or "untyped",
        question=question,
        gold_titles=_str_list(obj, "gold_titles", where),
        gold_ids=_str_list(obj, "gold_ids", where),
        answer=_str_list(obj, "answer", where),
        turns=turns,
        subtype=subtype.strip(),
        switch=switch,
        turn_gold_titles=turn_gold,
        missing=_str_list(obj, "missing", where),
    )


def load_dataset(path: Path) -> list[Question]:
    """Every question of a JSON Lines file (blank lines skipped; ids must be unique)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"Dataset {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"Dataset {path} cannot be read: {exc}.") from exc
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        q = parse_line(line, f"{path.name}:{n}")
        if q.id in seen:
            raise DatasetError(f"{path.name}:{n}: id '{q.id}' already used on line {seen[q.id]}.")
        seen[q.id] = n
        questions.append(q)
    if not questions:
        raise DatasetError(f"Dataset {path} has no questions.")
    return questions


# --- gold papers ----------------------------------------------------------------------
@dataclass
class GoldIndex:
    """Normalized title -> paper ids, and paper id -> title, for the whole index."""

    by_title: dict[str, list[str]]
    titles: dict[str, str]
    fingerprint: str = ""  # sha256 of the sorted (paper id, content hash) pairs

    def key_of(self, paper_id: str) -> str:
        """The key a paper is scored under: one per normalized title (duplicates meet)."""
        from rag import normalize_title

        title = self.titles.get(paper_id)
        return f"title:{normalize_title(title)}" if title else f"id:{paper_id}"


def build_gold_index(pipeline) -> GoldIndex:
    import hashlib

    from rag import normalize_title

    by_title: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    hashes = []
    for paper in pipeline.papers():
        by_title.setdefault(normalize_title(paper.title), []).append(paper.paper_id)
        titles[paper.paper_id] = paper.title
        content = hashlib.sha256(f"{paper.title}\n{paper.abstract}".encode()).hexdigest()
        hashes.append(f"{paper.paper_id}\t{content}")
    fingerprint = hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
    return GoldIndex(by_title, titles, fingerprint)


@dataclass
class Gold:
    keys: set[str]
    missing: list[str] = field(default_factory=list)  # gold titles/ids not in the index


def resolve_gold(q: Question, index: GoldIndex) -> Gold:
    """The question's gold keys. A gold paper missing from the index keeps a key of its
    own, so it still counts against recall (it cannot be found)."""
    from rag import normalize_title

    gold = Gold(set())
    for title in q.gold_titles:
        norm = normalize_title(title)
        gold.keys.add(f"title:{norm}")
        if norm not in index.by_title:
            gold.missing.append(title)
    for pid in q.gold_ids:
        if pid in index.titles:
            gold.keys.add(index.key_of(pid))
        else:
            gold.keys.add(f"id:{pid}")
            gold.missing.append(pid)
    return gold


def missing_gold(questions: list[Question], index: GoldIndex) -> list[tuple[Question, str]]:
    """(question, title or id) for every gold paper the index does not hold."""
    return [(q, m) for q in questions for m in resolve_gold(q, index).missing]


# --- running --------------------------------------------------------------------------
Progress = Callable[[int, int], None]


def run_question(pipeline, q: Question, index: GoldIndex, *, k: int, use_llm: bool | None,
                 judge=None) -> dict:
    """Ask one question (earlier turns first, in one conversation) and score it."""
    ans, usage, latency = _ask(pipeline, q, k, use_llm)
    # Retrieval metrics need 10 papers; the answer keeps the configured k, so rank the
    # (standalone) question again. Retrieval is deterministic, so ranks agree.
    ranked_hits = pipeline.search(ans.standalone_question or q.question, k=max(10, k))
    gold = resolve_gold(q, index)
    ranked = [index.key_of(h.paper.paper_id) for h in ranked_hits]
    cited = [index.key_of(c.paper_id) for c in ans.citations]
    sources = {index.key_of(h.paper.paper_id) for h in ans.hits}
    record = _record(q, ans, gold, ranked_hits, ranked, cited, usage)
    scores: dict = {}
    scores.update(M.retrieval_metrics(ranked, gold.keys))
    scores.update(M.citation_metrics(cited, gold.keys, sources))
    scores.update(M.abstention_metrics(cited, gold.keys, ans.abstained))
    scores["key_facts"] = M.key_facts(ans.text, q.answer, ans.abstained)
    scores["answer_words"] = float(M.word_count(ans.text))
    scores["latency_ms"] = round(latency, 2)
    scores["tokens"] = _total_tokens(usage)
    scores.update(_check_metrics(ans))
    record["metrics"] = scores
    if judge is not None:
        record["judge"] = judge.judge(q.question, ans)
    return record


def _ask(pipeline, q: Question, k: int, use_llm: bool | None):
    """(answer, token usage of every turn, latency of the last turn in ms)."""
    from rag import Conversation

    conversation = Conversation() if q.turns else None
    usage: dict[str, int] = {}
    for turn in q.turns:
        earlier = pipeline.answer(turn, k=k, conversation=conversation, use_llm=use_llm)
        _add_usage(usage, earlier.usage)
    t0 = time.perf_counter()
    ans = pipeline.answer(q.question, k=k, conversation=conversation, use_llm=use_llm)
    latency = (time.perf_counter() - t0) * 1000
    _add_usage(usage, ans.usage)
    return ans, usage, latency


def _record(q: Question, ans, gold: Gold, ranked_hits, ranked: list[str], cited: list[str],
            usage: dict) -> dict:
    """One line of per_question.jsonl, before its metrics."""
    return {
        "id": q.id,
        "type": q.type,
        "question": q.question,
        "turns": list(q.turns),
        "standalone_question": ans.standalone_question or None,
        "gold_titles": list(q.gold_titles),
        "gold_ids": list(q.gold_ids),
        "gold_missing": gold.missing,
        "answer_facts": list(q.answer),
        "retrieved": [
            {
                "rank": i,
                "paper_id": h.paper.paper_id,
                "title": h.paper.title,
                "gold": key in gold.keys,
            }
            for i, (h, key) in enumerate(zip(ranked_hits, ranked, strict=False), start=1)
        ],
        "cited": [
            {"n": c.n, "paper_id": c.paper_id, "title": c.title, "gold": key in gold.keys}
            for c, key in zip(ans.citations, cited, strict=False)
        ],
        "abstained": ans.abstained,
        "answer": ans.text,
        "answerer": ans.answerer,
        "note": ans.note or None,
        "usage": usage or None,
        "timings_ms": ans.timings_ms,
        **_check_fields(ans),
    }


def _check_fields(ans) -> dict:
    """What the citation check did: its verdict, what it removed and flagged, and the
    model's reply as it came (None for the offline answerer)."""
    return {"supported": ans.supported, "removed_citations": ans.removed_citations,
            "unsupported_sentences": list(ans.unsupported_sentences),
            "raw_reply": ans.raw_reply or None}


def _check_metrics(ans) -> dict:
    """Per-question inputs of invented_number_rate and unsupported_rate.

    ``invented_numbers`` / ``citation_numbers``: the [n] the model wrote that point to no
    source, of all [n] it wrote, counted on the raw reply (after the check removed them
    the answer has none by construction). "A [1]. B [7][1]." over 3 sources: 1 of 3.
    """
    from rag import split_citations

    numbers = sum(len(part) for part in split_citations(ans.raw_reply or "")
                  if isinstance(part, list))  # the [n] it wrote
    return {"invented_numbers": float(ans.removed_citations) if numbers else None,
            "citation_numbers": float(numbers) if numbers else None,
            "unsupported": None if ans.abstained else float(not ans.supported)}


def _total_tokens(usage: dict) -> float | None:
    if "total_tokens" in usage:
        return float(usage["total_tokens"])
    parts = [usage[k] for k in ("prompt_tokens", "completion_tokens") if k in usage]
    return float(sum(parts)) if parts else None


def _add_usage(total: dict, usage: dict | None) -> None:
    for key, value in (usage or {}).items():
        if isinstance(value, (int, float)):
            total[key] = total.get(key, 0) + value


def select(questions: list[Question], *, types: tuple[str, ...] = (),
           limit: int | None = None) -> list[Question]:
    """The questions of ``types`` (all when empty), at most ``limit``, stratified by type.

    Each type keeps its share of the limit (largest remainders), and every type at least
    one question while the limit allows; within a type the first questions in file order.
    Example: 12 lookup, 6 followup, 2 unanswerable, limit 10 -> 6, 3 and 1.
    """
    chosen = [q for q in questions if not types or q.type in types]
    if limit is None or limit >= len(chosen):
        return chosen
    by_type: dict[str, list[Question]] = {}
    for q in chosen:
        by_type.setdefault(q.type, []).append(q)
    exact = {t: limit * len(qs) / len(chosen) for t, qs in by_type.items()}
    quota = {t: int(x) for t, x in exact.items()}
    for t in sorted(exact, key=lambda t: quota[t] - exact[t])[:limit - sum(quota.values())]:
        quota[t] += 1
    for t in [t for t in quota if quota[t] == 0]:  # every type once, taken from the largest
        big = max(quota, key=lambda t: quota[t])
        if quota[big] > 1:
            quota[big] -= 1
            quota[t] = 1
    keep = {id(q) for t, qs in by_type.items() for q in qs[:quota[t]]}
    return [q for q in chosen if id(q) in keep]


def run_all(pipeline, questions: list[Question], index: GoldIndex, *, k: int,
            use_llm: bool | None, judge=None, progress: Progress | None = None) -> list[dict]:
    records = []
    for i, q in enumerate(questions):
        records.append(run_question(pipeline, q, index, k=k, use_llm=use_llm, judge=judge))
        if progress is not None:
            progress(i + 1, len(questions))
    return records
