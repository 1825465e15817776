"""`ask ingest --rebuild` under readers (issue 26, item 1).

A rebuild used to delete the collection and fill it again in place: a reader answering in
a loop failed for the whole rebuild ("Error creating hnsw segment reader: Nothing found
on disk", "Collection ... does not exist"), or answered with no sources. Now it fills a
new collection beside the live one and swaps it in whole: readers answer from the old
index until the swap and from the new one after it; a rebuild killed part-way leaves the
old index as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from reliability_helpers import BUNDLED, BUNDLED_PAPERS, GOOD_QUESTION, GOOD_TITLE, run_ask
from synthetic import papers, write_csv

pytestmark = pytest.mark.slow


def _rebuild(data, *paths) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ingest", "--rebuild", "--data-dir", str(data),
         *map(str, paths)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


class Reader:
    """A Pipeline asking a question in a loop in a thread, as `ask ui` serving /ask does."""

    def __init__(self, pipe):
        self.pipe, self.answers, self.failures = pipe, 0, []
        self.empty: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                answer = self.pipe.answer(GOOD_QUESTION)
            except Exception as exc:  # what a user of the UI would have seen
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            self.answers += 1
            if not answer.hits or answer.abstained:
                self.empty.append(answer.text[:200])

    def join(self) -> None:
        self.stop.set()
        self.thread.join(timeout=300)


def test_readers_answer_throughout_a_rebuild_then_see_the_new_index(bundled_copy, tmp_path):
    pipe, data = bundled_copy
    extra = papers(1, seed=2611)[0]
    csv = write_csv(tmp_path / "new.csv", [extra])
    assert pipe.search(extra["title"], k=1)[0].paper.title != extra["title"]
    reader = Reader(pipe)
    try:
        proc = _rebuild(data, BUNDLED, csv)
        out, err = proc.communicate(timeout=1200)
    finally:
        reader.join()
    assert proc.returncode == 0, err[-2000:]
    assert reader.failures == [], reader.failures[:3]
    assert reader.empty == [], reader.empty[:3]
    assert reader.answers > 0
    # After the swap, the same reader answers from the new index at its next question.
    hit = pipe.search(extra["title"], k=1)[0]
    assert hit.paper.title == extra["title"] and hit.lexical
    assert pipe.count_papers() == BUNDLED_PAPERS + 1
    assert pipe.answer(GOOD_QUESTION).hits[0].paper.title == GOOD_TITLE


def _wait_for_rebuild_copy(pipe, proc) -> None:
    """Until the rebuild's new collection holds some chunks (the rebuild is part-way)."""
    client, name = pipe.store.index.client, f"{pipe.settings.collection}_chunks_rebuild"
    while proc.poll() is None:
        try:
            if client.get_collection(name, embedding_function=None).count() > 0:
                return
        except Exception:  # not made yet
            pass
        threading.Event().wait(0.05)
    raise AssertionError(f"the rebuild ended before it was killed: {proc.stderr.read()[-2000:]}")


def test_a_rebuild_killed_part_way_leaves_the_old_index_readable(bundled_copy, tmp_path):
    pipe, data = bundled_copy
    big = write_csv(tmp_path / "big.csv", papers(1500, seed=26))
    proc = _rebuild(data, big)
    try:
        _wait_for_rebuild_copy(pipe, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    searched = run_ask("search", "--data-dir", str(data), "-k", "1", GOOD_QUESTION)
    assert searched.returncode == 0 and GOOD_TITLE in searched.stdout, searched.stderr[-2000:]
    doctor = run_ask("doctor", "--data-dir", str(data))
    assert doctor.returncode == 0 and f"{BUNDLED_PAPERS} papers" in doctor.stdout, (
        doctor.stdout[-2000:] + doctor.stderr[-2000:])
    # The next writer drops what the killed rebuild left, and a rebuild then completes.
    small = write_csv(tmp_path / "small.csv", papers(3, seed=7))
    rebuilt = run_ask("ingest", "--rebuild", "--data-dir", str(data), small)
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    names = {c.name for c in pipe.store.index.client.list_collections()}
    assert names == {f"{pipe.settings.collection}_chunks",
                     f"{pipe.settings.collection}_chunks_retired"}, names
    assert pipe.count_papers() == 3
