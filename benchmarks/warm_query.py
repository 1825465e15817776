"""Retrieval latency of a built index, first touch and warm, with each search part.

``benchmarks/run.py`` times each question once, right after the ingest: at 1M papers
most of its p95 is the first touch of postings and paper rows no earlier question read.
This script asks the same questions twice in one process and reports both passes (the
second is the warm index of issue 23's bar), with the p95 of each part of the search
(embed, dense, lexical, fuse: reading the candidates and ranking them).

    python benchmarks/warm_query.py --data /tmp/b1m/1000000-wordllama/abstracta \\
        --questions /tmp/b1m/1000000-wordllama/questions.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import _quantiles as quantiles  # noqa: E402  (the benchmarks' one median/p95)


def one_pass(pipeline, questions: list[str]) -> dict:
    total, parts = [], {}
    for q in questions:
        timings: dict = {}
        t = time.perf_counter()
        pipeline.search(q, timings=timings)
        total.append((time.perf_counter() - t) * 1000)
        for key, value in timings.items():
            parts.setdefault(key, []).append(value)
    return {"search": quantiles(total), **{k: quantiles(v) for k, v in parts.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the index's data dir")
    parser.add_argument("--questions", type=Path, required=True, help="a JSON list of questions")
    parser.add_argument("--embedder", default="wordllama")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    from rag import Pipeline, load_settings

    questions = json.loads(args.questions.read_text())
    pipeline = Pipeline(load_settings(data_dir=args.data, embedder=args.embedder,
                                      auto_ingest_bundled=False))
    t0 = time.perf_counter()
    pipeline.search(questions[0])  # opens Chroma, the lexical snapshot, the model
    opened = time.perf_counter() - t0
    first = one_pass(pipeline, questions)
    warm = one_pass(pipeline, questions)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(questions)} questions, {pipeline.count_chunks()} chunks; opening "
          f"{opened:.1f} s; peak RSS {rss:,.0f} MiB")
    print(f"{'part':10} {'first median':>13} {'first p95':>10} {'warm median':>12} {'warm p95':>9}")
    for part in first:
        print(f"{part:10} {first[part]['median_ms']:13.1f} {first[part]['p95_ms']:10.1f} "
              f"{warm[part]['median_ms']:12.1f} {warm[part]['p95_ms']:9.1f}")
    if args.out:
        args.out.write_text(json.dumps({"questions": len(questions), "opening_s": opened,
                                        "peak_rss_mib": round(rss, 1), "first": first,
                                        "warm": warm}, indent=1))


if __name__ == "__main__":
    main()
