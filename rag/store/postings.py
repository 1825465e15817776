"""The author facet: author-name key -> the papers filed under it, for one generation.

Authors are nearly one value per paper, so unlike dates or categories their facet cannot
be a list of distinct stored values handed to Chroma. It is postings, kept as four numpy
arrays that a process memory-maps instead of parsing (a question that filters by author
touches a few pages; one that does not, none):

- ``hashes``: each key's 64-bit hash (BLAKE2b), sorted: a key is found by binary search;
- ``offsets``: key ``i``'s papers are ``postings[offsets[i]:offsets[i + 1]]``;
- ``postings``: indexes into ``papers``;
- ``papers``: the paper ids (bytes).

Worked example: papers ``A`` ("Wei Li") and ``B`` ("Li Na, Wei Li") give keys ``li``
-> {A, B}, ``wei`` -> {A, B}, ``na`` -> {B}, ``wei~li`` -> {A, B}, ``w*~li`` -> {A, B},
``li~na``, ``l*~na`` -> {B} (see :func:`rag.authors.index_keys`). A hash collision between
two of the index's keys (about 1 in 10^7 at 10^6 keys) would file one key's papers under
the other too: the search still shows what matches the question among them.

Written into a folder named by the facets key, built beside it and renamed into place:
a process that has the previous arrays mapped keeps reading them (Linux keeps a renamed
or deleted file's pages alive), never a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from array import array
from pathlib import Path

import numpy as np

PARTS = ("hashes", "offsets", "postings", "papers")


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


class AuthorPostings:
    """Key -> paper ids, over the four arrays (see the module)."""

    def __init__(self, hashes: np.ndarray, offsets: np.ndarray, postings: np.ndarray,
                 papers: np.ndarray):
        self.hashes, self.offsets, self.postings, self.papers = hashes, offsets, postings, papers

    @classmethod
    def empty(cls) -> AuthorPostings:
        return cls(np.zeros(0, np.uint64), np.zeros(1, np.int64), np.zeros(0, np.int32),
                   np.zeros(0, "S1"))

    def __len__(self) -> int:
        return len(self.hashes)

    def papers_of(self, key: str) -> set[str]:
        """Ids of the papers filed under ``key`` (empty: none)."""
        h = np.uint64(key_hash(key))
        i = int(np.searchsorted(self.hashes, h))
        if i == len(self.hashes) or self.hashes[i] != h:
            return set()
        rows = self.postings[self.offsets[i]:self.offsets[i + 1]]
        return {p.decode() for p in self.papers[rows]}

    def save(self, folder: Path) -> None:
        """Into ``folder`` (replaced whole; see the module)."""
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}-{threading.get_ident()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in PARTS:
            np.save(tmp / f"{name}.npy", getattr(self, name), allow_pickle=False)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

    @classmethod
    def load(cls, folder: Path) -> AuthorPostings | None:
        """The arrays saved in ``folder``, memory-mapped (None: missing or unreadable)."""
        try:
            arrays = [np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                      for name in PARTS]
        except (OSError, ValueError):
            return None
        return cls(*arrays)


class PostingsBuilder:
    """Collects (key, paper) pairs page by page; :meth:`build` sorts them into arrays.

    Two flat arrays of 12 bytes a pair, not a dict of lists (at 10^6 papers of ~5 authors,
    about 3·10^7 pairs: 360 MB while building, against several GB as Python objects)."""

    def __init__(self) -> None:
        self.hashes = array("Q")
        self.rows = array("i")
        self.papers: list[str] = []

    def add(self, paper_id: str, keys: set[str]) -> None:
        if not keys:
            return
        row = len(self.papers)
        self.papers.append(paper_id)
        self.hashes.extend(key_hash(k) for k in keys)
        self.rows.extend([row] * len(keys))

    def build(self) -> AuthorPostings:
        if not self.papers:
            return AuthorPostings.empty()
        hashes = np.frombuffer(self.hashes, dtype=np.uint64)
        rows = np.frombuffer(self.rows, dtype=np.int32)
        order = np.argsort(hashes, kind="stable")  # each key's papers stay in paper order
        hashes, rows = hashes[order], rows[order]
        keys, starts = np.unique(hashes, return_index=True)
        offsets = np.append(starts, len(hashes)).astype(np.int64)
        papers = np.array([p.encode() for p in self.papers], dtype="S")
        return AuthorPostings(keys, offsets, rows.copy(), papers)
