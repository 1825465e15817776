"""A first run stopped part-way (Ctrl-C, SIGTERM) is finished by the next `ask`, and until
then `ask doctor` says the sample corpus is incomplete (issue 26, item 2).

Before the fix the next `ask` answered from the partial index for good (it only looked
for an empty index) and the doctor called the index healthy.
"""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys

import pytest
from reliability_helpers import (
    BUNDLED_PAPERS,
    index_counts,
    progress_count,
    read_pty,
    run_ask,
    written_part_way,
)

pytestmark = pytest.mark.slow

BUNDLED_RECORDS = 404  # the first run's progress counts records
QUESTION = "Which paper combines group quantization with structured sparsity?"


def _env(data) -> dict:
    # wordllama with MiniLM-sized chunks: fast, yet the run lasts long enough to stop it.
    return {"ABSTRACTA_EMBEDDER": "wordllama", "ABSTRACTA_CHUNK_TOKENS": "110",
            "ABSTRACTA_DATA_DIR": str(data)}


def _first_run_stopped(data, sig: int) -> tuple[int, str]:
    """`ask QUESTION` on an empty data dir under a pty, sent ``sig`` once its progress bar
    shows 64 or more of the bundled corpus's records and a paper is written; (exit code,
    output)."""
    master, slave = pty.openpty()
    env = dict(os.environ, **_env(data), TERM="xterm", COLUMNS="120")
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", QUESTION], stdin=slave,
                            stdout=slave, stderr=slave, env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    try:
        seen = read_pty(master, proc, written_part_way(data, BUNDLED_RECORDS, 64), timeout=240)
        assert 64 <= progress_count(seen, BUNDLED_RECORDS) < BUNDLED_RECORDS, seen[-800:]
        os.killpg(proc.pid, sig) if sig == signal.SIGINT else os.kill(proc.pid, sig)
        seen = read_pty(master, proc, None, seen, 60)
        proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, seen.decode(errors="replace")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])
def test_a_stopped_first_run_is_reported_and_finished_by_the_next_ask(tmp_path, sig, code):
    data = tmp_path / "data"
    returncode, output = _first_run_stopped(data, sig)
    assert returncode == code, output[-1500:]
    assert "Stopped after" in output, output[-1500:]
    partial, _ = index_counts(data)
    assert 0 < partial < BUNDLED_PAPERS

    doctor = run_ask("doctor", env=_env(data))
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert (f"sample corpus incomplete: {partial} of {BUNDLED_PAPERS} papers; run `ask` (or "
            "`ask ingest --bundled`) again to finish.") in doctor.stdout, doctor.stdout
    assert "healthy" not in doctor.stdout

    again = run_ask(QUESTION, env=_env(data), timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    indexed = re.search(r"Indexed: (\d+) added, 0 updated, (\d+) unchanged", again.stderr)
    assert indexed, again.stderr[-2000:]  # the resumed run says what it did, as a first run
    assert (f"Finishing the bundled sample corpus ({partial} of {BUNDLED_PAPERS} papers "
            "indexed)") in again.stderr
    assert (int(indexed.group(1)), int(indexed.group(2))) == (BUNDLED_PAPERS - partial, partial)
    assert index_counts(data)[0] == BUNDLED_PAPERS
    assert "GQSA" in again.stdout

    healthy = run_ask("doctor", env=_env(data))
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "The index is healthy." in healthy.stdout
    assert "sample corpus" not in healthy.stdout
