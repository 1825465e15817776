"""Dense-side variants for lookups in the user's own words, measured on tune (issue 21).

    python -m eval.dense_variants                   # tune, the configured embedder
    python -m eval.dense_variants --dataset eval/datasets/tune.jsonl --data-dir /tmp/x

The lexical-gap lookups miss their bar at hit@5, and the misses are papers the dense side
ranks low (a paper BM25 cannot see). This script asks whether some use of the models we
ship lifts the dense ranking, by paper, before any fusion or re-rank: hit@1 / @5 / @20 of
the gold paper for each lookup subtype, for

- ``max chunk``: a paper's best chunk cosine, what :class:`rag.retrieve.DenseRetriever`
  ranks by;
- ``paper mean``: the cosine with the mean of the paper's chunk vectors (the whole
  abstract's direction), and ``max + 0.3 mean``;
- ``prf m=M b=B``: Rocchio pseudo-relevance feedback, the query moved towards the mean
  vector of the M best papers by B (q' = q + B * mean, re-normalized), searched again;
- ``no framing``: the question without "I remember a paper that ... Which one was it?";
- ``wordllama``: wordllama's static embeddings, alone and fused (RRF, weight 0.5) with
  the dense and lexical rankings, as a third retriever would be.

It fits and changes nothing; the README's quality section quotes its table. Every
variant runs over the whole corpus in numpy (the bundled corpus is small), so it measures
rankings, not speed.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

DEFAULT_TUNE = Path(__file__).parent / "datasets" / "tune.jsonl"
CUTS = (1, 5, 20)

# The framing a user wraps a lookup in; what is left must keep 3 words or more.
_LEAD = re.compile(
    r"^(?:(?:i\s+(?:remember|recall|read|saw)|(?:i'?m\s+)?looking\s+for|is\s+there|find|"
    r"name|which|what)\s+)?(?:(?:a|an|the|some|one)\s+)?(?:paper|study|work|article|method|"
    r"approach|model|system|tool|benchmark|dataset|technique)s?\s*(?:that|which|where|"
    r"about|on|with|for)?\s+", re.I)
_TAIL = re.compile(r"\s*(?:which one (?:was|is) it|what(?:'s| is| was) it called)\s*\??\s*$",
                   re.I)


def unframed(question: str) -> str:
    """The question without its framing.

    >>> unframed("I remember a paper that prunes whole heads. Which one was it?")
    'prunes whole heads.'
    """
    rest = _LEAD.sub("", _TAIL.sub("", question))
    return rest if len(rest.split()) >= 3 else question


class Corpus:
    """Every chunk vector of the index, the paper of each, and each paper's mean vector."""

    def __init__(self, store):
        got = store.index.collection.get(include=["embeddings", "metadatas"])
        self.vectors = _unit(np.asarray(got["embeddings"], dtype=np.float32))
        pids = [m["paper_id"] for m in got["metadatas"]]
        self.papers = sorted(set(pids))
        where = {p: i for i, p in enumerate(self.papers)}
        self.owner = np.array([where[p] for p in pids])
        self.titles = {m["paper_id"]: m["title"] for m in got["metadatas"]}
        self.texts = [f"{m['title']}. {m['text']}" for m in got["metadatas"]]
        sums = np.zeros((len(self.papers), self.vectors.shape[1]), dtype=np.float32)
        np.add.at(sums, self.owner, self.vectors)
        self.means = _unit(sums)

    def best_chunk(self, q: np.ndarray, vectors: np.ndarray | None = None) -> np.ndarray:
        """Each paper's best chunk cosine with ``q``."""
        cos = (self.vectors if vectors is None else vectors) @ q
        best = np.full(len(self.papers), -2.0, dtype=np.float32)
        np.maximum.at(best, self.owner, cos)
        return best

    def ranking(self, scores: np.ndarray) -> list[str]:
        return [self.papers[i] for i in np.argsort(-scores, kind="stable")]


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=-1, keepdims=True), 1e-12)


def prf(corpus: Corpus, q: np.ndarray, m: int, beta: float) -> np.ndarray:
    """Rocchio feedback: q' = unit(q + beta * mean of the m best papers' mean vectors)."""
    top = np.argsort(-corpus.best_chunk(q))[:m]
    return corpus.best_chunk(_unit(q + beta * corpus.means[top].mean(axis=0)))


def rrf(lists: list[list[str]], weights: list[float]) -> list[str]:
    """The search's own fusion (:mod:`rag.retrieve.fusion`) of each ranking's first 100."""
    from rag.retrieve.fusion import fused_order
    from rag.retrieve.fusion import rrf as fuse

    heads = [ranking[:100] for ranking in lists]
    return fused_order(fuse(heads, weights), heads)


def variants(corpus: Corpus, embed: Callable, wordllama, lexical) -> dict[str, Callable]:
    """name -> (question text) -> ranking of paper ids."""
    wl_vectors = _unit(np.asarray(wordllama.embed_documents(corpus.texts), dtype=np.float32))

    def dense(text: str) -> list[str]:
        return corpus.ranking(corpus.best_chunk(embed(text)))

    def wl(text: str) -> list[str]:
        return corpus.ranking(corpus.best_chunk(_unit(wordllama.embed_query(text)), wl_vectors))

    out: dict[str, Callable] = {
        "max chunk": dense,
        "paper mean": lambda t: corpus.ranking(corpus.means @ embed(t)),
        "max + 0.3 mean": lambda t: corpus.ranking(
            corpus.best_chunk(embed(t)) + 0.3 * (corpus.means @ embed(t))),
        "no framing": lambda t: dense(unframed(t)),
        "wordllama": wl,
        "dense + lexical (RRF)": lambda t: rrf([dense(t), lexical(t)], [1.0, 1.0]),
        "dense + lexical + 0.5 wordllama": lambda t: rrf(
            [dense(t), lexical(t), wl(t)], [1.0, 1.0, 0.5]),
    }
    for m, beta in ((1, 0.3), (3, 0.3), (5, 0.3), (5, 0.6)):
        out[f"prf m={m} b={beta}"] = (
            lambda t, m=m, beta=beta: corpus.ranking(prf(corpus, embed(t), m, beta)))
    return out


def table(questions, corpus: Corpus, ranked: dict[str, Callable]) -> list[str]:
    """One line per variant: hit@CUTS of the gold paper, by lookup subtype."""
    from rag import clean_question, normalize_title

    lines = []
    for name, rank in ranked.items():
        found: dict[str, list[int]] = defaultdict(list)
        for q in questions:
            gold = {normalize_title(t) for t in q.gold_titles}
            order = rank(clean_question(q.question))
            found[q.subtype or "other"].append(next(
                (i for i, p in enumerate(order, 1)
                 if normalize_title(corpus.titles[p]) in gold), 10**6))
        cells = [f"{sub} (n={len(r)}) " + " ".join(
            f"@{c} {np.mean(np.array(r) <= c):.3f}" for c in CUTS)
            for sub, r in sorted(found.items())]
        lines.append(f"{name:32s} " + " | ".join(cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_TUNE)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    from eval.harness import load_dataset
    from rag import Pipeline, load_settings
    from rag.embed import WordLlamaEmbedder
    from rag.retrieve.retrievers import Query
    from rag.text import terms

    pipeline = Pipeline(load_settings(data_dir=args.data_dir))
    pipeline.ensure_corpus()
    searcher = pipeline.searcher()
    corpus = Corpus(pipeline.store)
    lexical_retriever = next(r for r, _ in searcher.retrievers if r.name == "lexical")

    def embed(text: str) -> np.ndarray:
        return _unit(np.asarray(pipeline.embedder.embed_query(text), dtype=np.float32))

    def lexical(text: str) -> list[str]:
        return lexical_retriever.rank(Query(text, tuple(terms(text)), None), 100, None).papers

    questions = [q for q in load_dataset(args.dataset) if q.type == "lookup" and q.gold_titles]
    print(f"{len(questions)} lookups of {args.dataset}, {pipeline.embedder_name()}; "
          f"hit@{'/'.join(map(str, CUTS))} of the gold paper, dense ranking by paper")
    for line in table(questions, corpus, variants(corpus, embed, WordLlamaEmbedder(), lexical)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
