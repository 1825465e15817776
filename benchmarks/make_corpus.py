"""Make N synthetic papers as arXiv-metadata JSON Lines, for the benchmarks.

Every paper gets a fresh arXiv-style id (``2501.00001`` ...) and a fresh title (a
new acronym + a description recombined from two bundled titles); its abstract is
a recombination of sentences from the bundled corpus, drawn until it is as long
as a randomly chosen bundled abstract (so chunks per paper match real papers).
The original paper's acronym in a borrowed sentence becomes the new acronym, so
a question that names a paper's acronym has one right answer. The same seed
always gives the same file.

    python benchmarks/make_corpus.py 10000 -o /tmp/papers-10k.jsonl --seed 7
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

FIRST = ("Wei Ana Jonas Priya Omar Lena Kenji Sofia Mateo Aisha Lukas Mei Ravi Elena Tomas "
         "Yuki Hannah Arjun Chloe Diego Fatima Noah Ines Sven Leila Marco Zara Ivan").split()
LAST = ("Zhang Garcia Muller Sharma Haddad Rossi Tanaka Silva Novak Kowalski Chen Dubois Patel "
        "Okafor Jensen Moreau Kim Nguyen Ivanova Fischer Costa Lindqvist Sato Mendes").split()
CATEGORIES = ["cs.CL", "cs.LG", "cs.CV", "cs.AI", "cs.IR", "cs.DC", "stat.ML", "cs.RO"]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])")


def bundled_papers():
    """The bundled corpus as Paper records (the source of every sentence and title)."""
    from rag import BUNDLED_CORPUS, expand_paths, load_path

    return [p for f in expand_paths([BUNDLED_CORPUS]) for p in load_path(f).papers]


def _acronym(title: str) -> str | None:
    head, sep, _ = title.partition(":")
    return (
        head.strip() if sep and 2 <= len(head.strip()) <= 24 and " " not in head.strip() else None
    )


def _description(title: str) -> list[str]:
    head, sep, tail = title.partition(":")
    return (tail if sep and _acronym(title) else title).split()


def _new_acronym(index: int, rng: random.Random) -> str:
    """A unique acronym: a random pronounceable stem plus the base-26 index (unique by index)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    stem = "".join(rng.choice(letters) for _ in range(rng.randint(2, 3)))
    code, n = "", index
    while True:
        code = letters[n % 26] + code
        n //= 26
        if n == 0:
            break
    return stem + code


def make_papers(n: int, seed: int = 0):
    """Yield ``n`` synthetic arXiv-style records (dicts), deterministic for a seed."""
    rng = random.Random(seed)
    source = bundled_papers()
    pool: list[tuple[str, str | None]] = []  # (sentence, acronym of the paper it came from)
    for p in source:
        acro = _acronym(p.title)
        pool.extend((s, acro) for s in _SENTENCE_END.split(p.abstract) if len(s) > 20)
    lengths = [len(p.abstract) for p in source]
    descriptions = [d for d in (_description(p.title) for p in source) if len(d) >= 4]
    for i in range(n):
        acro = _new_acronym(i, rng)
        a, b = rng.sample(descriptions, 2)
        desc = a[: max(2, len(a) // 2)] + b[len(b) // 2:]
        title = f"{acro}: {' '.join(desc)}"
        target = rng.choice(lengths)
        sentences: list[str] = []
        while sum(len(s) + 1 for s in sentences) < target:
            text, old = rng.choice(pool)
            sentences.append(re.sub(rf"\b{re.escape(old)}\b", acro, text) if old else text)
        month = 1 + (i // 99_999) % 12
        yield {
            "id": f"25{month:02d}.{i % 99_999 + 1:05d}"
            if i < 12 * 99_999
            else f"26{month:02d}.{i:05d}",
            "title": title,
            "abstract": " ".join(sentences),
            "authors": ", ".join(
                f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(rng.randint(1, 6))
            ),
            "categories": " ".join(rng.sample(CATEGORIES, rng.randint(1, 3))),
            "update_date": f"2025-{month:02d}-{rng.randint(1, 28):02d}",
        }


def write_corpus(n: int, out: Path, seed: int = 0) -> Path:
    """Write ``n`` papers to ``out`` (JSON Lines) and return the path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in make_papers(n, seed):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="number of papers")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output .jsonl file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_corpus(args.n, args.out, args.seed)
    print(f"{args.n} papers -> {args.out}")


if __name__ == "__main__":
    main()
