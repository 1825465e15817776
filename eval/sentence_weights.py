"""How much each of the offline answerer's sentence weights matters, measured on tune.

    python -m eval.sentence_weights                 # the tune split, the configured embedder

Retrieval runs once per question; then the offline answer is written again with each
weight of :class:`rag.answer.SentenceWeights` set to 0 and doubled, and the key facts
(the ``answer`` strings a correct answer contains, :func:`eval.metrics.key_facts`) are
counted. Lookups, details and multi-paper questions with key facts; abstentions count
as missing the facts, as in ``ask eval``. The table goes into SentenceWeights' docstring.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

DEFAULT_TUNE = Path(__file__).parent / "datasets" / "tune.jsonl"
TYPES = ("lookup", "detail", "multi")


def answers(cases, weights) -> float:
    """Mean key-fact containment of the offline answers written with ``weights``."""
    import rag.answer
    from eval.metrics import key_facts

    saved = rag.answer.W
    rag.answer.W = weights  # this process only: the script measures, it changes nothing
    try:
        scores = []
        for question, hits, facts, searcher, threshold in cases:
            ans = rag.answer.answer_offline(
                question, hits, threshold, absent=searcher.absent(question, hits),
                weights=searcher.term_weights(question))
            score = key_facts(ans.text, facts, ans.abstained)
            scores.append(0.0 if score is None else score)
        return sum(scores) / max(len(scores), 1)
    finally:
        rag.answer.W = saved


def collect(dataset: Path, data_dir: Path | None):
    """(question, hits, facts, searcher, threshold) for each question with key facts."""
    from eval.harness import load_dataset
    from rag import Pipeline, clean_question, load_settings

    pipeline = Pipeline(load_settings(data_dir=data_dir))
    pipeline.ensure_corpus()
    searcher = pipeline.searcher()
    cases = []
    for q in load_dataset(dataset):
        if q.type in TYPES and q.answer:
            question = clean_question(q.question)
            hits = searcher.search(question)
            cases.append((question, hits, list(q.answer), searcher,
                          pipeline.settings.abstain_threshold))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_TUNE)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    from rag.answer import SentenceWeights

    cases = collect(args.dataset, args.data_dir)
    base = SentenceWeights()
    print(f"{len(cases)} questions; key facts with the current weights: "
          f"{answers(cases, base):.3f}")
    print(f"{'weight':22s} {'x0':>6s} {'x2':>6s}")
    for field in dataclasses.fields(base):
        value = getattr(base, field.name)
        zero = answers(cases, dataclasses.replace(base, **{field.name: 0.0}))
        double = answers(cases, dataclasses.replace(base, **{field.name: 2 * value}))
        print(f"{field.name:22s} {zero:6.3f} {double:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
