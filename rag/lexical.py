"""BM25 over chunk texts: build the score matrix, save it, map it, score a question.

The scoring is Lucene's BM25 (as in bm25s, Elasticsearch and Lucene itself), with
Lucene's defaults k1 = 1.2 and b = 0.75, over Snowball-stemmed words
(:func:`rag.text.terms`: "proposes" and "proposed" are one term, "propos"), the way
Lucene's English analyzer and bm25s with PyStemmer tokenize. For a term w and a chunk d::

    idf(w)      = ln(1 + (N - df(w) + 0.5) / (df(w) + 0.5))
    score(d, w) = idf(w) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))

Worked example: N = 1,406 chunks, "sparsity" in df = 9 of them, so idf =
ln(1 + 1397.5 / 9.5) = 5.00. In a chunk of |d| = 60 words (avgdl = 75) that uses
it tf = 2 times: 5.00 * 2 / (2 + 1.2 * (0.25 + 0.75 * 0.8)) = 5.00 * 2 / 3.02 = 3.31.
A question's score for a chunk is the sum over its terms.

Every score(d, w) is computed once, at build time, into a sparse matrix stored by
word (CSC: the chunks that contain word w are ``indices[indptr[w]:indptr[w+1]]``,
their scores at the same positions of ``data``). A question then costs one slice
per term and one ``bincount``. The arrays are saved as plain ``.npy`` files and
memory-mapped by every query process. A test checks the scores against bm25s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.text import stem, words

FORMAT = 4  # bump when the saved layout or the tokens change: older caches are rebuilt
K1, B = 1.2, 0.75


def idf(n_docs: int, df):
    """Lucene's IDF (works on numbers and on numpy arrays alike)."""
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


@dataclass
class Lexical:
    """A BM25 index: the score matrix plus the chunk id and paper id of each row."""

    vocab: dict[str, int]  # stemmed term -> column
    data: np.ndarray      # float32 scores, grouped by word
    indices: np.ndarray   # int32 row of each score
    indptr: np.ndarray    # int64, len(vocab) + 1: where each word's scores start
    chunk_ids: np.ndarray  # of str, one per row
    paper_ids: np.ndarray  # of str, one per row
    generation: str

    def scores(self, query_terms: list[str]) -> np.ndarray:
        """BM25 score of every row for stemmed terms (:func:`rag.text.terms`; a repeated
        question term counts again)."""
        cols = [self.vocab[w] for w in query_terms if w in self.vocab]
        if not cols:
            return np.zeros(len(self.chunk_ids), dtype=np.float32)
        rows = np.concatenate([self.indices[self.indptr[c]:self.indptr[c + 1]] for c in cols])
        vals = np.concatenate([self.data[self.indptr[c]:self.indptr[c + 1]] for c in cols])
        return np.bincount(rows, weights=vals, minlength=len(self.chunk_ids)).astype(np.float32)

    def doc_freq(self, word: str) -> int:
        """Rows that contain the (stemmed) term; 0 for one the index has never seen."""
        col = self.vocab.get(word)
        return 0 if col is None else int(self.indptr[col + 1] - self.indptr[col])

    def idf(self, word: str) -> float:
        """The word's IDF in this index, as used in its scores."""
        return float(idf(len(self.chunk_ids), self.doc_freq(word)))


class Builder:
    """Collects chunk texts page by page as int32 term ids, then builds the matrix.

    Term ids, not strings: at 100k chunks the strings alone took 2 GB. The tokens are
    exactly :func:`rag.text.terms` of each text; each distinct surface word is stemmed
    once (``surface`` maps it to its term's id), not once per occurrence.
    """

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self.surface: dict[str, int] = {}
        self.tokens: list[np.ndarray] = []
        self.chunk_ids: list[str] = []
        self.paper_ids: list[str] = []

    def add(self, chunk_ids: list[str], paper_ids: list[str], texts: list[str]) -> None:
        vocab, surface = self.vocab, self.surface
        for text in texts:
            ids = []
            for w in words(text):
                col = surface.get(w)
                if col is None:
                    col = surface[w] = vocab.setdefault(stem(w), len(vocab))
                ids.append(col)
            self.tokens.append(np.array(ids, dtype=np.int32))
        self.chunk_ids += chunk_ids
        self.paper_ids += paper_ids

    def build(self, generation: str) -> Lexical | None:
        n_docs = len(self.tokens)
        if not n_docs:
            return None
        lengths = np.array([len(t) for t in self.tokens], dtype=np.int64)
        tok = np.concatenate(self.tokens) if lengths.sum() else np.zeros(0, dtype=np.int32)
        doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        # One key per (word, chunk) pair; sorting the keys groups them by word, then
        # chunk: exactly the CSC order. The counts are the term frequencies.
        keys, tf = np.unique(tok.astype(np.int64) * n_docs + doc, return_counts=True)
        col, row = keys // n_docs, keys % n_docs
        df = np.bincount(col, minlength=len(self.vocab))
        avgdl = max(float(lengths.mean()), 1e-9)
        norm = K1 * (1 - B + B * lengths[row] / avgdl)
        data = (idf(n_docs, df)[col] * tf / (tf + norm)).astype(np.float32)
        indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        return Lexical(dict(self.vocab), data, row.astype(np.int32), indptr,
                       np.array(self.chunk_ids), np.array(self.paper_ids), generation)


def save(lex: Lexical, folder: Path) -> None:
    """Write the index to ``folder`` (plain .npy arrays and JSON, nothing pickled)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("data", "indices", "indptr", "chunk_ids", "paper_ids"):
        np.save(folder / f"{name}.npy", getattr(lex, name), allow_pickle=False)
    (folder / "vocab.json").write_text(json.dumps(lex.vocab))
    (folder / "manifest.json").write_text(json.dumps(
        {"generation": lex.generation, "format": FORMAT, "chunks": len(lex.chunk_ids)}))


def load(folder: Path, generation: str) -> Lexical | None:
    """The saved index, memory-mapped; None when it is missing, damaged or stale."""
    try:
        info = json.loads((folder / "manifest.json").read_text())
        if info.get("generation") != generation or info.get("format") != FORMAT:
            return None

        def arr(name, mmap=True):
            return np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None,
                           allow_pickle=False)

        return Lexical(json.loads((folder / "vocab.json").read_text()), arr("data"),
                       arr("indices"), arr("indptr"), arr("chunk_ids", False),
                       arr("paper_ids", False), generation)
    except (OSError, ValueError, KeyError, AttributeError):
        return None  # a damaged cache is rebuilt by the caller
