"""The run's memory of the papers it wrote or checked, in 15 bytes a paper."""

from __future__ import annotations

import hashlib

import numpy as np

from rag.ingest.merge import Prior


class Seen:
    """The papers this run has written or checked, for the batches that follow: whether
    the run added, updated or left each one unchanged, and where its first record was.

    Kept in numpy arrays of 15 bytes a paper (a 64-bit hash of the id, the outcome, the
    file's number and the line), not in a dict of ids: 2.7M papers (the whole arXiv)
    take 40 MB instead of ~500 MB. A hash collision (odds ~1e-7 at 2.7M) would at most
    miscount one paper as updated or misname the record a merge went into. Papers whose
    records brought several abstracts keep the others' keys (``extra``): a later record
    with any of them still matches; such papers are few (as few as the merges reported).
    """

    ADDED, UPDATED, UNCHANGED = 0, 1, 2

    def __init__(self) -> None:
        self.keys = np.empty(0, np.int64)
        self.outcome = np.empty(0, np.uint8)
        self.source = np.empty(0, np.uint16)
        self.line = np.empty(0, np.uint32)
        self.names: list[str] = []  # file names by number (a run reads few files)
        self.numbers: dict[str, int] = {}
        self.extra: dict[str, frozenset[str]] = {}
        self.batch: dict[str, tuple[int, str]] = {}  # this batch, until commit()

    @staticmethod
    def key(pid: str) -> int:
        return int.from_bytes(hashlib.blake2b(pid.encode(), digest_size=8).digest(), "little",
                              signed=True)

    def _find(self, pid: str) -> int | None:
        k = self.key(pid)
        i = int(np.searchsorted(self.keys, k))
        return i if i < len(self.keys) and self.keys[i] == k else None

    def get(self, pid: str) -> Prior | None:
        """What an earlier batch did with this paper (None: not seen in this run)."""
        i = self._find(pid)
        if i is None:
            return None
        where = "" if self.source[i] == 0xFFFF else f"{self.names[self.source[i]]}:{self.line[i]}"
        return Prior(bool(self.outcome[i] == self.ADDED), where,
                      self.extra.get(pid, frozenset()))

    def outcome_of(self, pid: str) -> int | None:
        i = self._find(pid)
        return None if i is None else int(self.outcome[i])

    def put(self, pid: str, outcome: int, where: str, extra: set[str]) -> None:
        self.batch[pid] = (outcome, where)
        if extra:
            self.extra[pid] = frozenset(extra)
        else:
            self.extra.pop(pid, None)

    def _where(self, where: str) -> tuple[int, int]:
        name, _, line = where.rpartition(":")
        if not name or not line.isdigit() or int(line) >= 2**32:
            return 0xFFFF, 0
        if name not in self.numbers:
            if len(self.names) >= 0xFFFF:
                return 0xFFFF, 0
            self.numbers[name] = len(self.names)
            self.names.append(name)
        return self.numbers[name], int(line)

    def commit(self) -> None:
        """Fold this batch into the arrays (a paper seen before keeps its first record)."""
        new_keys, new_out, new_src, new_line = [], [], [], []
        for pid, (outcome, where) in self.batch.items():
            i = self._find(pid)
            if i is not None:
                self.outcome[i] = outcome
                continue
            source, line = self._where(where)
            new_keys.append(self.key(pid))
            new_out.append(outcome)
            new_src.append(source)
            new_line.append(line)
        self.batch = {}
        if not new_keys:
            return
        keys = np.concatenate([self.keys, np.array(new_keys, np.int64)])
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.outcome = np.concatenate([self.outcome, np.array(new_out, np.uint8)])[order]
        self.source = np.concatenate([self.source, np.array(new_src, np.uint16)])[order]
        self.line = np.concatenate([self.line, np.array(new_line, np.uint32)])[order]

