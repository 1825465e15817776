"""Split the hand-written question sets into ``tune`` and ``test``, once, reproducibly.

    python eval/datasets/make_split.py

Inputs: ``new_a.jsonl`` and ``new_b.jsonl`` (questions written from reading the
abstracts of corpus files 000-001 and 002-003), ``gap.jsonl`` (the lexical-gap lookups
and details and the two-part questions, added 2026-12-02 as strata of their own: the
strata of the first two files split exactly as before) and ``dev.jsonl`` (the first dev set,
155 questions, on which the earlier constants were fitted: it can only ever be tuning
data, so all of it goes to ``tune``).

The new questions are split half and half within each stratum (type, plus the lookup
subtype and whether a conversation switches topic), so both halves have the same mix.
Inside a stratum the order is a hash of the question id, not the file order, so
neither half gets all of one writer's or one corpus file's questions by accident;
the hash never changes, so the split is the same on every run and every machine.

Worked example: a stratum of 5 questions whose id hashes sort as c, a, e, b, d goes
c->test, a->tune, e->test, b->tune, d->test (test gets the odd one out).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).parent
NEW = ("new_a.jsonl", "new_b.jsonl", "gap.jsonl")


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def stratum(q: dict) -> str:
    if q["type"] == "lookup":
        return f"lookup/{q.get('subtype') or ('kw' if '-kw-' in q['id'] else 'para')}"
    if q["type"] == "detail" and q.get("subtype"):  # the lexical-gap and two-part details
        return f"detail/{q['subtype']}"
    if q["type"] == "followup":
        return f"followup/{'switch' if q.get('switch') else 'same'}"
    return q["type"]


def split(questions: list[dict]) -> tuple[list[dict], list[dict]]:
    by_stratum: dict[str, list[dict]] = {}
    for q in questions:
        by_stratum.setdefault(stratum(q), []).append(q)
    tune: list[dict] = []
    test: list[dict] = []
    for name in sorted(by_stratum):
        ordered = sorted(by_stratum[name],
                         key=lambda q: hashlib.sha256(q["id"].encode()).hexdigest())
        for i, q in enumerate(ordered):
            (test if i % 2 == 0 else tune).append(q)
    return tune, test


def main() -> None:
    new = [q for name in NEW for q in _read(HERE / name)]
    tune, test = split(new)
    old = _read(HERE / "dev.jsonl")
    for q in old:
        q.setdefault("origin", "dev-v1")
        if q["type"] == "lookup":
            q.setdefault("subtype", "kw" if "-kw-" in q["id"] else "para")
    tune = old + tune
    for name, rows in (("tune.jsonl", tune), ("test.jsonl", test)):
        rows = sorted(rows, key=lambda q: (q["type"], q["id"]))
        (HERE / name).write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in rows),
                                 encoding="utf-8")
        counts: dict[str, int] = {}
        for q in rows:
            counts[stratum(q)] = counts.get(stratum(q), 0) + 1
        print(name, len(rows), dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
