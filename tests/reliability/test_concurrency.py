"""One writer at a time, many readers: the data directory's write lock (rag/lock.py).

Found while writing these: two `ask ingest` processes writing one embedded index at
once left 612 of 5,367 chunks unreadable ("Error finding id" / "Error getting
embedding"): each process keeps its own in-memory HNSW graph and saves it over the
other's. The lock makes the second writer wait (or, with --no-wait, refuse).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from reliability_helpers import BUNDLED_PAPERS, assert_clean_failure, run_ask, write_bytes

from rag.errors import IndexBusyError
from rag.lock import WRITE_LOCK, WriteLock

ONE_PAPER = ("title,abstract\nQuibblefrost Sketches,We introduce quibblefrost sketches that "
             "count distinct events in constant memory and merge across machines.\n")
WORDLLAMA = {"ABSTRACTA_EMBEDDER": "wordllama"}


def _held_by(data_dir, command="ask ingest big.csv") -> WriteLock:
    lock = WriteLock(data_dir, command)
    lock.acquire(wait=False)
    return lock


def test_no_wait_fails_at_once_naming_the_holder(tmp_path):
    data = tmp_path / "data"
    paper = write_bytes(tmp_path / "one.csv", ONE_PAPER)
    lock = _held_by(data)
    try:
        started = time.monotonic()
        proc = run_ask("ingest", "--no-wait", paper, env=WORDLLAMA)
        elapsed = time.monotonic() - started
    finally:
        lock.release()
    line = assert_clean_failure(proc, exit_code=1)
    assert f"pid {os.getpid()}" in line and "`ask ingest big.csv`" in line and "since" in line
    assert elapsed < 30  # at once: no waiting (the process start itself takes seconds)


def test_second_writer_waits_then_ingests(tmp_path):
    data = tmp_path / "data"
    paper = write_bytes(tmp_path / "one.csv", ONE_PAPER)
    lock = _held_by(data)
    env = dict(os.environ, **WORDLLAMA)
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(paper)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        waited = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "Waiting for" not in waited:
            waited += proc.stderr.readline()
        assert f"pid {os.getpid()}" in waited and "`ask ingest big.csv`" in waited, waited
        time.sleep(1)
        assert proc.poll() is None  # still waiting while the lock is held
    finally:
        lock.release()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-2000:]
    assert "1 added" in out and "Traceback" not in err
    holder = json.loads((data / WRITE_LOCK).read_text())
    assert holder["command"].startswith("ask ingest") and holder["done"]


def test_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    data = tmp_path / "data"
    paper = write_bytes(tmp_path / "one.csv", ONE_PAPER)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_bytes(data / WRITE_LOCK, json.dumps(
        {"pid": dead.pid, "command": "ask ingest huge.csv", "since": time.time() - 60}))
    proc = run_ask("ingest", paper, env=WORDLLAMA)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no longer running" in proc.stderr and f"pid {dead.pid}" in proc.stderr
    assert "`ask ingest huge.csv`" in proc.stderr and "1 added" in proc.stdout


@pytest.mark.parametrize("how", ["ingest", "rebuild", "first_run"])
def test_every_writer_takes_the_lock(tmp_path, wordllama_embedder, how):
    """The lock lives in the ingest layer: the UI's upload (Pipeline.ingest), --rebuild
    and the first-run ingest of the bundled corpus all take it."""
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    data = tmp_path / "data"
    pipe = Pipeline(load_settings(data_dir=data, embedder="wordllama"),
                    embedder=wordllama_embedder)
    paper = write_bytes(tmp_path / "one.csv", ONE_PAPER)
    lock = _held_by(data, "ask ui")
    try:
        with pytest.raises(IndexBusyError, match="`ask ui`"):
            if how == "first_run":
                _ensure_no_wait(pipe)
            else:
                pipe.ingest([paper], rebuild=how == "rebuild", wait=False)
        assert pipe.store.count_papers() == 0
    finally:
        lock.release()
    if how == "first_run":
        assert pipe.ensure_corpus().added == BUNDLED_PAPERS
    else:
        assert pipe.ingest([paper], rebuild=how == "rebuild").added == 1


def _ensure_no_wait(pipe):
    from rag.ingest import ensure_bundled_corpus

    return ensure_bundled_corpus(pipe.settings, pipe.store, pipe.embedder, wait=False)


# --- the bar: three writers and a reader at once -------------------------------------------

def _search(title: str, env: dict):
    return run_ask("search", "--json", "-k", "5", title, env=env, timeout=300)


@pytest.mark.slow
def _ingest_while_asking(paths, titles, env):
    """One `ask ingest` per path, all at once, while another thread keeps asking for a
    random title; returns (writer processes, their (stdout, stderr), the readers' runs)."""
    import random
    import threading

    stop = threading.Event()
    reads: list = []

    def reader():
        rng = random.Random(5)
        while not stop.is_set():
            reads.append(_search(rng.choice(titles), env))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        writers = [subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(path)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=dict(os.environ, **env))
                   for path in paths]
        outs = [w.communicate(timeout=1500) for w in writers]
    finally:
        stop.set()
        thread.join(timeout=600)
    return writers, outs, reads


def test_three_writers_and_a_reader_at_once(tmp_path):
    """Two different files and one file twice, 2,000 papers each (above Chroma's sync
    threshold of 1,000), while a fourth process keeps asking: every writer ends well, the
    reader never errs, every paper is there and `ask doctor` finds nothing wrong."""
    import random

    from synthetic import papers, write_csv

    data = tmp_path / "data"
    env = dict(WORDLLAMA, ABSTRACTA_DATA_DIR=str(data), ABSTRACTA_AUTO_INGEST_BUNDLED="false")
    rows_a, rows_b = papers(2000, seed=101), papers(2000, seed=202)
    a = write_csv(tmp_path / "a.csv", rows_a)
    b = write_csv(tmp_path / "b.csv", rows_b)
    titles = [r["title"] for r in rows_a + rows_b]
    assert len(set(titles)) == 4000
    writers, outs, reads = _ingest_while_asking((a, b, a), titles, env)
    for w, (out, err) in zip(writers, outs, strict=False):
        assert w.returncode == 0, err[-2000:]
        assert "Traceback" not in err and "Index:" in out
    waited = sum("Waiting for another process" in err for _, err in outs)
    assert waited >= 1  # they did run at the same time, one after another
    assert len(reads) >= 3
    failed = [r.stderr[-500:] for r in reads if r.returncode != 0]
    assert not failed, failed[:3]

    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    pipe = Pipeline(load_settings(data_dir=data, embedder="wordllama"))
    assert pipe.store.count_papers() == 4000 and pipe.store.count_chunks() == 4000
    for title in random.Random(9).sample(titles, 200):
        assert title in [h.paper.title for h in pipe.search(title, k=5)], title
    doctor = run_ask("doctor", env=env)
    assert doctor.returncode == 0 and "The index is healthy." in doctor.stdout, doctor.stdout


def _until(condition, what: str) -> None:
    for _ in range(1200):  # a guard against hanging, not a timing assertion
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_a_waiting_writer_names_the_writer_that_holds_the_lock_now(tmp_path):
    """A waiting writer named the first holder once and kept naming it after that one
    had finished and another writer had taken the lock first: now it says who holds it."""
    import threading

    data = tmp_path / "data"
    first = _held_by(data, "ask ingest first.csv")
    told: list[str] = []
    waiter = WriteLock(data, "ask ingest third.csv")
    thread = threading.Thread(target=waiter.acquire, kwargs={"on_wait": told.append})
    thread.start()
    try:
        _until(lambda: told, "the waiter says whom it waits for")
        assert "`ask ingest first.csv`" in told[0]
        # The first writer finishes and a second one takes the lock before this one:
        # the record the second writes, as WriteLock.acquire writes it.
        assert first.fd is not None
        os.ftruncate(first.fd, 0)
        os.pwrite(first.fd, json.dumps({"pid": os.getppid(), "command": "ask ingest second.csv",
                                        "since": time.time()}).encode(), 0)
        _until(lambda: len(told) > 1, "the waiter names the new holder")
        assert "`ask ingest second.csv`" in told[-1] and "first.csv" not in told[-1]
        assert f"pid {os.getppid()}" in told[-1]
    finally:
        first.release()
        thread.join(timeout=60)
        waiter.release()
    assert len(told) == 2  # told once per holder, not once per look
