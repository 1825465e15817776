"""The author and category facets: key -> the papers filed under it, for one generation.

Authors are nearly one value per paper, and a common category's papers are many distinct
stored values ("cs.CL", "cs.CL cs.AI", ...: a Chroma ``$in`` over thousands of them took
0.8 s at 100k papers), so unlike dates and sources these facets are not lists of distinct
values handed to Chroma. They are postings, kept as four numpy arrays that a process
memory-maps instead of parsing (a question that filters touches a few pages; one that
does not, none):

- ``hashes``: each key's 64-bit hash (BLAKE2b), sorted: a key is found by binary search;
- ``offsets``: key ``i``'s papers are ``postings[offsets[i]:offsets[i + 1]]``;
- ``postings``: indexes into ``papers``;
- ``papers``: the paper ids (bytes).

Worked example: papers ``A`` ("Wei Li") and ``B`` ("Li Na, Wei Li") give keys ``li``
-> {A, B}, ``wei`` -> {A, B}, ``na`` -> {B}, ``wei~li`` -> {A, B}, ``w*~li`` -> {A, B},
``li~na``, ``l*~na`` -> {B} (see :func:`rag.authors.index_keys`); a paper in "cs.CL
stat.ML" is filed under ``#cs.cl``, ``#cs``, ``#stat.ml`` and ``#stat``
(:func:`category_keys`). Two keys of one index share a hash with odds of about n²/2^65
(n = 10^6 keys: 1 in 4·10^7); one would then also bring the other's papers, which the
search would rank like any other.

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


def category_keys(categories: str) -> set[str]:
    """What a paper's categories are filed under: each one and its archive (the part
    before the dot), case folded and marked ``#`` (no author key has one)."""
    keys: set[str] = set()
    for category in categories.casefold().split():
        keys.update((f"#{category}", f"#{category.split('.')[0]}"))
    return keys


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


class Postings:
    """Key -> paper ids, over the four arrays (see the module)."""

    def __init__(self, hashes: np.ndarray, offsets: np.ndarray, postings: np.ndarray,
                 papers: np.ndarray):
        self.hashes, self.offsets, self.postings, self.papers = hashes, offsets, postings, papers

    @classmethod
    def empty(cls) -> Postings:
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
        try:
            for name in PARTS:
                np.save(tmp / f"{name}.npy", getattr(self, name), allow_pickle=False)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)  # OSError: another process put its own there first
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, folder: Path) -> Postings | None:
        """The arrays saved in ``folder``, memory-mapped (None: missing or unreadable)."""
        try:
            arrays = [np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                      for name in PARTS]
        except (OSError, ValueError):
            return None
        return cls(*arrays)


def updated(old: Postings, drop: set[str], add: list[tuple[str, set[str]]]) -> Postings:
    """``old`` without the papers in ``drop``, plus ``add`` (paper id, its keys): what a
    catch-up makes of the postings when some papers were written again (their old keys
    go, their new record's keys come), in numpy over the arrays rather than a recount
    of every paper record.

    >>> a = PostingsBuilder(); a.add("A", {"li", "wei"}); a.add("B", {"li"})
    >>> new = updated(a.build(), {"A"}, [("A", {"wang"}), ("C", {"li"})])
    >>> sorted(new.papers_of("li")), sorted(new.papers_of("wei")), sorted(new.papers_of("wang"))
    (['B', 'C'], [], ['A'])
    """
    counts = np.diff(np.asarray(old.offsets))
    hashes = np.repeat(np.asarray(old.hashes), counts)
    papers = np.asarray(old.papers)[np.asarray(old.postings)]
    if drop:
        keep = ~np.isin(papers, np.array([p.encode() for p in drop], dtype="S"))
        hashes, papers = hashes[keep], papers[keep]
    extra = [(key_hash(k), pid.encode()) for pid, keys in add for k in keys]
    if extra:
        hashes = np.concatenate([hashes, np.array([h for h, _ in extra], dtype=np.uint64)])
        papers = np.concatenate([papers.astype("S"), np.array([p for _, p in extra], "S")])
    if not len(hashes):
        return Postings.empty()
    ids, rows = np.unique(papers, return_inverse=True)
    order = np.argsort(hashes, kind="stable")
    hashes, rows = hashes[order], rows[order].astype(np.int32)
    keys, starts = np.unique(hashes, return_index=True)
    return Postings(keys, np.append(starts, len(hashes)).astype(np.int64), rows, ids)


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

    def build(self) -> Postings:
        if not self.papers:
            return Postings.empty()
        hashes = np.frombuffer(self.hashes, dtype=np.uint64)
        rows = np.frombuffer(self.rows, dtype=np.int32)
        order = np.argsort(hashes, kind="stable")  # each key's papers stay in paper order
        hashes, rows = hashes[order], rows[order]
        keys, starts = np.unique(hashes, return_index=True)
        offsets = np.append(starts, len(hashes)).astype(np.int64)
        papers = np.array([p.encode() for p in self.papers], dtype="S")
        return Postings(keys, offsets, rows.copy(), papers)
