"""Synthetic papers for the concurrency and kill tests: CSV files of made-up papers whose
titles carry a unique invented method name, so each paper is findable by exact title."""

from __future__ import annotations

import csv
import random
from pathlib import Path

_SYLLABLES = ("ka zo ri mu te vo la pi ne xu do ga fe si lo ba tu ke wi ro ma qu ze hy "
              "pra sto vel dri mon fal gre tav").split()
_TOPICS = ("graph neural networks", "speculative decoding", "protein folding", "federated "
           "learning", "sparse attention", "image segmentation", "reinforcement learning",
           "retrieval augmented generation", "quantization", "time series forecasting",
           "robot navigation", "code generation", "speech recognition", "causal inference")
_FINDINGS = ("cuts memory use by {n}%", "improves accuracy by {n} points",
             "runs {n} times faster", "halves latency on {n} benchmarks",
             "reduces training cost by {n}%")


def method_name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(4)).capitalize()


def papers(n: int, seed: int) -> list[dict]:
    """``n`` distinct synthetic papers (title, abstract); same seed, same papers."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        name = method_name(rng)
        if name in seen:
            continue
        seen.add(name)
        topic = rng.choice(_TOPICS)
        finding = rng.choice(_FINDINGS).format(n=rng.randint(2, 90))
        title = f"{name}: {topic.title()} with {method_name(rng)} Kernels"
        abstract = (f"We introduce {name}, a method for {topic}. {name} combines a "
                    f"{rng.choice(_TOPICS)} module with a {method_name(rng).lower()} scheduler. "
                    f"On standard benchmarks {name} {finding} compared with strong baselines, "
                    f"and we release code and data.")
        out.append({"title": title, "abstract": abstract})
    return out


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["title", "abstract"])
        writer.writeheader()
        writer.writerows(rows)
    return path
