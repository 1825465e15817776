"""Helpers for the reliability tests (a plain module: pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from helpers import run_ask as _run_ask

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "rag" / "data" / "corpus"
BUNDLED_PAPERS = 358
# A question the bundled corpus answers, and the paper that answers it.
GOOD_QUESTION = "Which paper combines group quantization with structured sparsity?"
GOOD_TITLE = "GQSA: Group Quantization and Sparsity for Accelerating Large Language Model Inference"


# Root ignores file modes. Dropping these capabilities from the bounding set makes a root
# process obey them (uid stays 0, so the interpreter under /root is still reachable).
NO_DAC = "-dac_override,-dac_read_search,-fowner,-linux_immutable"


def without_root_powers() -> list[str]:
    """A command prefix that makes file permissions apply to the process ([] when not root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", f"--bounding-set={NO_DAC}", f"--inh-caps={NO_DAC}"]


def run_ask(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 180,
            obey_permissions: bool = False):
    """The shared run_ask; ``obey_permissions`` makes read-only files read-only even for root."""
    return _run_ask(*args, env=env, input=input, timeout=timeout,
                    prefix=without_root_powers() if obey_permissions else ())


def run_many(calls: dict[str, tuple[tuple, dict | None]], workers: int = 3) -> dict:
    """Run independent `ask` commands side by side (each spends seconds starting up):
    {name: (args, env)} -> {name: CompletedProcess}."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(run_ask, *args, env=env)
                   for name, (args, env) in calls.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_clean_failure(proc, exit_code: int | None = None, names: str | None = None) -> str:
    """A failed CLI run that printed one 'Error: ...' line and no traceback; returns that line."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    assert proc.returncode != 0, out[-2000:]
    if exit_code is not None:
        assert proc.returncode == exit_code, out[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    if names is not None:
        assert names in errors[0], errors[0]
    return errors[0]


def answer_json(proc) -> dict:
    """The object printed by a successful `ask --json` run."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def index_counts(data_dir: Path) -> tuple[int, int]:
    """(papers, chunks) of the embedded index in data_dir, read through a fresh store."""
    from rag.settings import load_settings
    from rag.store import open_store

    store = open_store(load_settings(data_dir=data_dir))
    return store.count_papers(), store.count_chunks()


def assert_answers(pipeline) -> None:
    """The pipeline still answers the known question, citing the known paper first."""
    answer = pipeline.answer(GOOD_QUESTION)
    assert not answer.abstained, answer.text
    assert answer.citations and answer.citations[0].title == GOOD_TITLE, answer.citations


def write_bytes(path: Path, data: bytes | str) -> Path:
    """Write bytes (or text as UTF-8, surrogates passed through) to path; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes)
                     else data.encode("utf-8", errors="surrogatepass"))
    return path


def readable(fd: int, timeout: float) -> bool:
    """Whether ``fd`` has something to read within ``timeout`` seconds. Uses poll, not
    select: select() refuses descriptors numbered 1024 and up, and a long test process
    (each Pipeline's Chroma client holds some until exit) gets there."""
    import select

    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def read_pty(master: int, proc, until=None, seen: bytes = b"", timeout: float = 60) -> bytes:
    """Read a pty's output (a process drawing its progress bar) into ``seen`` until
    ``until(seen)`` holds, the process ends and its output is read, or ``timeout``
    seconds pass. The reader must keep reading while the process stops: a pty whose
    reader stops reading blocks the writer, which would look like a hang."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until is not None and until(seen):
            break
        if readable(master, 0.05):
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    return seen


def papers_committed(data_dir) -> int:
    """Papers whose first chunk an ingest has committed to the embedded Chroma in
    ``data_dir``, read from its SQLite file (read-only, without waiting on a lock: 0
    while a write holds it). A progress bar counts records embedded, which run ahead of
    the writes: a test that stops an ingest "part-way" must see writes committed, or a
    stop can land before the first one (then nothing is in and nothing is resumed)."""
    import sqlite3
    from contextlib import closing

    path = Path(data_dir) / "chroma" / "chroma.sqlite3"
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0)) as db:
            row = db.execute("SELECT count(*) FROM embeddings WHERE embedding_id LIKE '%#0'")
            return int(row.fetchone()[0])
    except sqlite3.Error:
        return 0


def written_part_way(data_dir, total: int, after: int):
    """A ``read_pty`` condition: the bar shows ``after`` or more of ``total`` records and
    at least one paper is committed (checked at most every 0.2 s)."""
    import time

    last = [0.0]

    def until(seen: bytes) -> bool:
        if progress_count(seen, total) < after or time.monotonic() - last[0] < 0.2:
            return False
        last[0] = time.monotonic()
        return papers_committed(data_dir) > 0
    return until


def progress_count(seen: bytes, total: int) -> int:
    """The largest ``done`` a progress bar has drawn as ``done/total``."""
    import re

    return max((int(n) for n in re.findall(rb"(\d+)/%d" % total, seen)), default=0)
