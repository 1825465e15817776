"""Fusion: weighted reciprocal-rank fusion of the retrievers' rankings, the fused order,
and the pool of papers the relevance model re-orders. Pure functions of paper-id lists:
they never ask which retriever made a list."""

from __future__ import annotations

PER_RETRIEVER = 5  # each retriever's best papers always reach the re-rank


def rrf(rankings: list[list[str]], weights: list[float], k: int = 60) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: score(p) = sum_i w_i / (k + rank_i(p)).

    A paper missing from a ranking gets nothing from it. RRF needs no calibration
    between cosine similarities and BM25 scores, which live on unrelated scales.
    Worked example, k = 60, weights 1 and 1: A is 1st in dense and 3rd in BM25 ->
    1/61 + 1/63 = 0.03227; B is 2nd in dense only -> 1/62 = 0.01613; C is 1st in
    BM25 only -> 1/61 = 0.01639. Order: A, C, B.

    >>> s = rrf([["A", "B"], ["C", "x", "A"]], [1.0, 1.0], k=60)
    >>> [round(s[p], 5) for p in "ABC"]
    [0.03227, 0.01613, 0.01639]
    """
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=False):
        for rank, pid in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + weight / (k + rank)
    return fused


def fused_order(fused: dict[str, float], rankings: list[list[str]]) -> list[str]:
    """Papers by fused score; a tie (a paper 1st in one list only against one 1st in the
    other only) goes to the paper with the better best single rank, then by id."""
    best: dict[str, int] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking, start=1):
            best[pid] = min(best.get(pid, rank), rank)
    return sorted(fused, key=lambda p: (-round(fused[p], 12), best.get(p, 10**9), p))


def rerank_pool(order: list[str], rankings: list[list[str]], depth: int) -> list[str]:
    """The papers re-ordered by relevance: the first ``depth`` fused papers plus each
    retriever's first PER_RETRIEVER, in fused order. A paper that only BM25 finds, at
    rank 1 (an exact name), scores 1/61 in RRF and can sit below 20 papers that both
    retrievers rank middling; it must still be judged on its evidence."""
    chosen = set(order[:depth])
    for ranking in rankings:
        chosen.update(ranking[:PER_RETRIEVER])
    return [p for p in order if p in chosen]
