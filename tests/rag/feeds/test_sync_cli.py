"""The bar, through the real `ask` in a subprocess against the replay server: a sync
indexes the listed papers, a second one fetches nothing, a SIGKILL anywhere and a rerun
end with the index an uninterrupted sync builds, an unreachable server is one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from feeds_helpers import feed_env
from helpers import free_port, run_ask
from rag_helpers import index_snapshot
from replay import hf_day, ok, paper

API = "/api/daily_papers"
DAYS = ["2025-08-01", "2025-08-02", "2025-08-03", "2025-08-04"]


def _serve_days(replay) -> None:
    for n, day in enumerate(DAYS):
        replay.route(API, day, ok(hf_day([paper(2 * n + 1), paper(2 * n + 2)])))


def _sync(replay, data, *args, **env):
    return run_ask("sync", "hf", "--since", DAYS[0], "--until", DAYS[-1], *args,
                   env=feed_env(replay, ABSTRACTA_DATA_DIR=str(data), **env))


def _start_sync(replay, data, commit_records: str, output=subprocess.DEVNULL):
    """`ask sync hf` over the replayed days in a child process (to be killed)."""
    env = dict(os.environ, **feed_env(replay, ABSTRACTA_DATA_DIR=str(data),
                                      ABSTRACTA_SYNC_COMMIT_RECORDS=commit_records))
    return subprocess.Popen([sys.executable, "-m", "rag.cli", "sync", "hf", "--since", DAYS[0],
                             "--until", DAYS[-1]], env=env, stdout=output, stderr=output)


def _ok(proc) -> str:
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return proc.stdout


def test_sync_hf_indexes_the_listed_papers_then_a_rerun_fetches_nothing(replay, tmp_path):
    _serve_days(replay)
    out = _ok(_sync(replay, tmp_path / "d"))
    assert "8 fetched (4 pages new, 0 unchanged), 8 added" in out
    assert "hf-daily: 8 fetched, 8 added" in out and "New (8):" in out
    assert index_snapshot(tmp_path / "d")["papers"] == [f"2508.{n:05d}" for n in range(1, 9)]
    again = _ok(_sync(replay, tmp_path / "d"))
    assert "0 fetched" in again and "0 added" in again
    assert len(replay.requests(API)) == 4  # one request per day, none the second time
    listed = _ok(run_ask("new", "--since", "2025-08-04",
                         env=feed_env(replay, ABSTRACTA_DATA_DIR=str(tmp_path / "d"))))
    assert listed.splitlines()[1:] == [
        "2025-08-04  2508.00008  Paper 8: sparse attention study number 8",
        "2025-08-04  2508.00007  Paper 7: sparse attention study number 7"]


@pytest.mark.parametrize("held_day", [DAYS[1], DAYS[3]])
def test_sigkill_mid_sync_then_rerun_is_the_uninterrupted_index(replay, tmp_path, held_day):
    """Killed while the server holds a day's answer: before any commit (day 2), and after
    two days were committed and their cursor written (day 4, commits every 4 records)."""
    _serve_days(replay)
    _ok(_sync(replay, tmp_path / "whole"))
    whole = index_snapshot(tmp_path / "whole")
    release = replay.hold(API, held_day)
    proc = _start_sync(replay, tmp_path / "killed", "4", subprocess.PIPE)
    try:
        assert replay.held.wait(120), proc.stderr.read().decode()[-2000:] if proc.poll() else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        release.set()
    if held_day == DAYS[3]:  # days 1-2 went in before the kill; their cursor says so
        assert len(index_snapshot(tmp_path / "killed")["papers"]) == 4
    _ok(_sync(replay, tmp_path / "killed", ABSTRACTA_SYNC_COMMIT_RECORDS="4"))
    assert index_snapshot(tmp_path / "killed") == whole
    assert "0 fetched" in _ok(_sync(replay, tmp_path / "killed"))


@pytest.mark.parametrize("after", [2.0, 3.5, 5.0])
def test_sigkill_at_whatever_point_a_delay_lands_then_rerun_is_the_same_index(
        replay, tmp_path, after):
    """Killed ``after`` seconds in: wherever that lands (loading, fetching, mid-ingest,
    between a commit and its cursor), the rerun ends with the uninterrupted index. The
    assertion does not depend on where it landed."""
    _serve_days(replay)
    _ok(_sync(replay, tmp_path / "whole"))
    proc = _start_sync(replay, tmp_path / "killed", "2")
    try:
        proc.wait(after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    _ok(_sync(replay, tmp_path / "killed"))
    assert index_snapshot(tmp_path / "killed") == index_snapshot(tmp_path / "whole")


def test_unreachable_server_is_one_line_exit_1_and_the_index_untouched(replay, tmp_path):
    _serve_days(replay)
    replay.route(API, "2025-08-05", ok(hf_day([paper(9)])))
    _ok(_sync(replay, tmp_path / "d"))
    before = index_snapshot(tmp_path / "d")
    closed = f"http://127.0.0.1:{free_port()}/api/daily_papers"
    proc = run_ask("sync", "hf", "--since", DAYS[0], "--until", "2025-08-05",
                   env=feed_env(replay, ABSTRACTA_DATA_DIR=str(tmp_path / "d"),
                                ABSTRACTA_HF_PAPERS_URL=closed))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"Error: hf-daily: Cannot reach {closed} (connection refused); check the network or "
        "the feed's URL setting. Nothing was changed."]
    assert index_snapshot(tmp_path / "d") == before


def test_sync_with_no_arguments_runs_every_configured_source(replay, tmp_path):
    from replay import rss

    replay.route(API, "*", ok("[]"))
    replay.route("/rss/cs.CL", "", ok(rss("cs.CL", "Fri, 08 Aug 2025 00:00:00 -0400",
                                          [(paper(1), "new")]), "application/rss+xml"))
    out = _ok(run_ask("sync", env=feed_env(replay, ABSTRACTA_DATA_DIR=str(tmp_path / "d"),
                                           ABSTRACTA_SYNC_SOURCES="hf arxiv:cs.CL",
                                           ABSTRACTA_SYNC_DAYS="2")))
    assert "hf-daily: 0 fetched, 0 added" in out and "arxiv cs.CL: 1 fetched, 1 added" in out
    assert len(replay.requests(API)) == 2  # yesterday and today


def test_bad_arguments_are_usage_errors(replay, tmp_path):
    proc = run_ask("sync", "arxiv", "../etc", env=feed_env(replay))
    assert proc.returncode == 2 and "is not an arXiv category" in proc.stderr
    proc = run_ask("sync", "hf", "--since", "Aug 1", env=feed_env(replay))
    assert proc.returncode == 2 and "use 2025-08-01" in proc.stderr
    proc = run_ask("sync", "--every", "5s", env=feed_env(replay))
    assert proc.returncode == 2 and "between 1m and 7d" in proc.stderr
    assert replay.log == []
