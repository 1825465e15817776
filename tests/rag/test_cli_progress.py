"""Progress of a long ingest when nobody watches a terminal (a log, nohup, CI): a line
every so often with papers done, rate and ETA; the summary gives wall time and peak memory."""

from __future__ import annotations

import re
import time

from helpers import run_ask
from rag_helpers import write

from rag import cli


def test_progress_lines_give_done_rate_and_eta_off_a_terminal(capsys):
    update, lines = cli.progress_bar("Embedding", every=0.05)  # capsys: not a terminal
    with lines:
        time.sleep(1.0)  # reading files, loading the model: not part of the rate
        update(50, 400)  # the first update starts the clock, prints nothing
        time.sleep(0.1)
        update(150, 400)
        update(170, 400)  # within the interval of the last line: nothing
        time.sleep(0.1)
        update(300, 400)
        lines.note("waiting for the index lock")
    out = capsys.readouterr()
    assert out.out == ""
    printed = out.err.splitlines()
    assert len(printed) == 3, printed
    first = re.fullmatch(r"Embedding: 150 of 400 papers \(37%\), ([\d,.]+) papers/s, ETA (\d+)s",
                         printed[0])
    assert first, printed[0]
    rate = float(first.group(1).replace(",", ""))
    assert 400 < rate < 100 / 0.09  # 100 papers in about 0.1 s (not 150 in 1.1 s)
    assert int(first.group(2)) <= round(250 / rate) + 1  # the 250 left at that rate
    assert printed[1].startswith("Embedding: 300 of 400 papers (75%), ")
    assert printed[2] == "waiting for the index lock"


def test_the_default_interval_prints_nothing_for_a_short_run(capsys):
    update, lines = cli.progress_bar("Indexing")
    with lines:
        for done in range(0, 1001, 100):
            update(done, 1000)
    assert capsys.readouterr().err == ""
    assert cli.PROGRESS_EVERY == 30


def test_durations_read_as_minutes_and_hours():
    assert [cli._duration(s) for s in (0.4, 42, 190, 3599.6, 7500)] == \
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
