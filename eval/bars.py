"""Print a run's metrics against the issue-11 bars, by lookup subtype and follow-up kind.

    python -m eval.bars eval/runs/NAME --dataset eval/datasets/test.jsonl

Exits with code 3 when a bar is missed (as ``ask eval --fail-under`` does), so CI can gate on it.

The run's per_question.jsonl is joined with the dataset by question id for the fields
older runs do not record (``subtype``, ``switch``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval.metrics import BARS, bar_metrics, meets_bar


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="A run folder (holds per_question.jsonl).")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="The run's question set, for subtype and switch.")
    args = parser.parse_args(argv)
    records = [json.loads(line) for line in
               (args.run / "per_question.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    info = {}
    if args.dataset:
        from eval.harness import load_dataset

        info = {q.id: {"subtype": q.subtype, "switch": q.switch}
                for q in load_dataset(args.dataset)}
    print(f"{'metric':28s} {'value':>7s} {'n':>4s}  bar")
    missed = 0
    for name, stat in bar_metrics(records, info).items():
        bar, kind = BARS[name]
        ok = meets_bar(name, stat["value"])
        missed += ok is False
        value = "-" if stat["value"] is None else f"{stat['value']:.3f}"
        mark = {True: "ok", False: "MISSED", None: ""}[ok]
        print(f"{name:28s} {value:>7s} {stat['n']:4d}  {'>=' if kind == 'min' else '<='} "
              f"{bar}  {mark}")
    return 3 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
