"""Progress of a long ingest when nobody watches a terminal (a log, nohup, CI): a line
every so often with papers done, rate and ETA; the summary gives wall time and peak memory."""

from __future__ import annotations

import re

from helpers import run_ask
from rag_helpers import write

from rag import console


class Clock:
    """A clock the test moves by hand: the rate and ETA do not depend on a busy machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_give_done_rate_and_eta_off_a_terminal(capsys):
    clock = Clock()
    update, lines = console.progress_bar("Embedding", every=30, clock=clock)  # capsys: no tty
    with lines:
        clock.now += 600  # reading files, loading the model: not part of the rate
        update(50, 400)  # the first update starts the clock, prints nothing
        clock.now += 40
        update(150, 400)  # 100 papers in 40 s
        clock.now += 10
        update(170, 400)  # within the interval of the last line: nothing
        clock.now += 25
        update(300, 400)  # 150 papers in 35 s since the last line
        lines.note("waiting for the index lock")
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [
        "Embedding: 150 of 400 papers (37%), 2.5 papers/s, ETA 1m40s",
        "Embedding: 300 of 400 papers (75%), 4.3 papers/s, ETA 23s",
        "waiting for the index lock",
    ]


def test_the_default_interval_prints_nothing_for_a_short_run(capsys):
    clock = Clock()
    update, lines = console.progress_bar("Indexing", clock=clock)
    with lines:
        for done in range(0, 1001, 100):
            clock.now += 2.9  # 29 s in all: under the default interval
            update(done, 1000)
    assert capsys.readouterr().err == ""
    assert console.PROGRESS_EVERY == 30


def test_durations_read_as_minutes_and_hours():
    assert [console.duration(s) for s in (0.4, 42, 190, 3599.6, 7500)] == \
        ["0s", "42s", "3m10s", "1h00m", "2h05m"]


def test_ingest_summary_gives_wall_time_and_peak_memory(tmp_path):
    path = write(
        tmp_path / "mine.csv",
        "title,abstract,id\nQuibblefrost Sketches,We introduce "
        "quibblefrost sketches that count distinct events in constant memory.,2501.00042\n",
    )
    res = run_ask("ingest", str(path), env={"ABSTRACTA_DATA_DIR": str(tmp_path / "data"),
                                            "ABSTRACTA_EMBEDDER": "wordllama"})
    assert res.returncode == 0, res.stderr
    summary = re.search(r"1 added, .*\) in (\d+\.\d) s, peak memory ([\d,]+) MiB", res.stdout)
    assert summary, res.stdout
    assert 0 < float(summary.group(1)) < 180
    assert 30 < int(summary.group(2).replace(",", "")) < 4096  # a Python process with numpy
    assert "━" not in res.stderr  # no bar drawn into a pipe
