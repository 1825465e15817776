"""Killing an ingest: no orphaned workers, a clean stop on Ctrl-C / SIGTERM, a resume that
ends with the uninterrupted run's index.

An ingest of WORKER_MIN_PAPERS papers or more chunks and embeds in spawned worker
processes (plus multiprocessing's resource tracker). Before the fix, SIGKILL of the
parent left all three asleep forever; Ctrl-C said only "Aborted."
(tests/rag/test_ingest.py kills the in-process path at random points and resumes.)
"""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_helpers import progress_count, read_pty
from synthetic import papers, write_csv

from rag.ingest import WORKER_MIN_PAPERS

pytestmark = pytest.mark.slow

N_PAPERS = WORKER_MIN_PAPERS + 500


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            todo.extend(kids - found)
            found |= kids
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


def _start(csv: Path, data: Path):
    """`ask ingest csv` under a pty (so it draws its progress bar), wordllama."""
    master, slave = pty.openpty()
    env = dict(os.environ, ABSTRACTA_EMBEDDER="wordllama", ABSTRACTA_DATA_DIR=str(data),
               TERM="xterm", COLUMNS="120")
    # SIGINT as a terminal's foreground process has it: a shell that starts a job in the
    # background (`.ci/run &`) leaves it ignored, and every child would inherit that.
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(csv)],
                            stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    return proc, master


def _read_until(proc, master, seen: bytes, done: int, timeout: float = 240) -> bytes:
    """Read the pty until the progress bar shows ``done`` papers and the workers run."""
    def reached(out: bytes) -> bool:
        return progress_count(out, N_PAPERS) >= done and len(_descendants(proc.pid)) >= 2

    seen = read_pty(master, proc, reached, seen, timeout)
    if not reached(seen):
        raise AssertionError(f"the ingest never reached {done} papers: {seen[-800:]!r}")
    return seen


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("kill") / "papers.csv", papers(N_PAPERS, seed=14))


def _snapshot(data: Path) -> dict:
    """Chunk ids and records (texts, paper records with content hashes) of an index."""
    from rag.settings import load_settings
    from rag.store import open_store, snapshot

    return snapshot(open_store(load_settings(data_dir=data)))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, corpus, wordllama_embedder) -> dict:
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    data = tmp_path_factory.mktemp("whole") / "data"
    pipe = Pipeline(Settings(data_dir=data, embedder="wordllama", _env_file=None),
                    embedder=wordllama_embedder)
    assert pipe.ingest([corpus]).added == N_PAPERS
    return _snapshot(data)


def test_sigkill_of_the_parent_leaves_no_process_behind(tmp_path, corpus):
    proc, master = _start(corpus, tmp_path / "data")
    try:
        _read_until(proc, master, b"", 1)
        children = _descendants(proc.pid)
        assert len(children) >= 2, children  # the workers (and the resource tracker)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(5)
        survivors = [pid for pid in children if _running(pid)]
        assert not survivors, [Path(f"/proc/{p}/cmdline").read_bytes() for p in survivors]
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])
def test_stop_says_how_far_it_got_and_the_same_command_finishes(tmp_path, corpus, uninterrupted,
                                                                 sig, code):
    from reliability_helpers import index_counts, run_ask

    data = tmp_path / "data"
    proc, master = _start(corpus, data)
    try:
        seen = _read_until(proc, master, b"", 512)
        children = _descendants(proc.pid)
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(proc.pid, sig) if sig == signal.SIGINT else os.kill(proc.pid, sig)
        started = time.monotonic()
        # Keep reading while it stops: a pty whose reader stops reading blocks the writer
        # (the "Stopped after" line and any warning), which would look like a hang.
        seen = read_pty(master, proc, None, seen, 60)
        proc.wait(timeout=5)  # never hangs (it used to, when a worker had died)
        assert time.monotonic() - started < 30, seen[-1500:]
        seen = read_pty(master, proc, None, seen, 2).decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, seen[-1500:]
    assert "Traceback" not in seen, seen[-3000:]
    stopped = re.search(r"Stopped after (\d+) of (\d+) records; run the same command again to "
                        r"finish\.", seen)
    assert stopped, seen[-1500:]
    assert int(stopped.group(2)) == N_PAPERS and int(stopped.group(1)) < N_PAPERS
    time.sleep(2)
    assert not [pid for pid in children if _running(pid)]

    papers_in, _ = index_counts(data)
    assert papers_in >= int(stopped.group(1))  # everything it counted is committed
    env = {"ABSTRACTA_EMBEDDER": "wordllama", "ABSTRACTA_DATA_DIR": str(data)}
    resumed = run_ask("ingest", corpus, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{N_PAPERS - papers_in} added, 0 updated, {papers_in} unchanged" in resumed.stdout
    assert index_counts(data) == (N_PAPERS, N_PAPERS)  # one chunk per paper: no duplicates
    assert _snapshot(data) == uninterrupted
