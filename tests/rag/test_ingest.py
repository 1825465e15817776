"""Ingest: idempotent re-runs, changed abstracts, merged listings, kill-and-resume."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time

import pytest
from rag_helpers import (
    BUNDLED,
    BUNDLED_PAPERS,
    BUNDLED_RECORDS,
    index_snapshot,
    listing_page,
    write,
)

from rag.chunk import make_chunker
from rag.errors import EmbeddingMismatchError
from rag.identity import paper_id

GQSA = "GQSA: Group Quantization and Sparsity for Accelerating Large Language Model Inference"
BUNDLED_000 = "000_b88a07071653e565.txt"
NEW_ABSTRACT = ("This revised abstract says that GQSA now relies on zorbulated lattice codebooks "
                "for quantization, and that it reaches a fourfold speed-up over dense kernels on "
                "consumer GPUs while keeping accuracy within one point of the original model.")


def _original_abstract(store) -> str:
    return store.get_papers([paper_id(GQSA)])[paper_id(GQSA)].abstract


def _chunks_of(store, pid: str) -> list[str]:
    chunks = [c for page in store.scan() for c in page if c.paper_id == pid]
    return [c.text for c in sorted(chunks, key=lambda c: c.n or 0)]


def test_reingesting_the_same_files_changes_nothing(bundled_copy):
    pipe, _ = bundled_copy
    chunks_before = pipe.store.count_chunks()
    generation = pipe.store.generation()
    report = pipe.ingest([BUNDLED])
    assert (report.added, report.updated, report.unchanged) == (0, 0, BUNDLED_PAPERS)
    assert report.records == BUNDLED_RECORDS and report.files == 4 and report.chunks == 0
    assert pipe.store.count_papers() == BUNDLED_PAPERS
    assert pipe.store.count_chunks() == chunks_before
    assert pipe.store.generation() == generation  # the lexical cache stays valid


def test_changed_abstract_replaces_the_old_chunks(bundled_copy, tmp_path, settings):
    pipe, _ = bundled_copy
    pid = paper_id(GQSA)
    old_abstract = _original_abstract(pipe.store)
    page = write(tmp_path / "in" / BUNDLED_000, listing_page("Aug 13", [(GQSA, NEW_ABSTRACT)]))
    report = pipe.ingest([page])
    assert (report.added, report.updated, report.unchanged) == (0, 1, 0)
    paper = pipe.store.get_papers([pid])[pid]
    assert paper.abstract == NEW_ABSTRACT and paper.dates == ("--08-13",)
    chunks = _chunks_of(pipe.store, pid)
    expected = make_chunker(settings)(paper)
    assert chunks == [c.text for c in expected]
    assert all(c.startswith(GQSA + "\n") for c in chunks)
    assert "zorbulated" in " ".join(chunks)
    assert not any(old_abstract[:60] in c for c in chunks)
    assert pipe.store.count_papers() == BUNDLED_PAPERS
    hits = pipe.search("zorbulated lattice codebooks", k=1)
    assert hits[0].paper.paper_id == pid and hits[0].lexical is not None
    # Running the same file again is now a no-op.
    again = pipe.ingest([page])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)


def test_same_paper_in_a_new_file_keeps_both_dates_and_sources(bundled_copy, tmp_path):
    pipe, _ = bundled_copy
    pid = paper_id(GQSA)
    chunks_before = _chunks_of(pipe.store, pid)
    page = write(tmp_path / "sep02.txt",
                 listing_page("Sep 2", [(GQSA, _original_abstract(pipe.store))]))
    report = pipe.ingest([page])
    assert (report.added, report.updated, report.unchanged, report.chunks) == (0, 1, 0, 0)
    paper = pipe.store.get_papers([pid])[pid]
    assert paper.dates == ("--08-13", "--09-02")
    assert paper.sources == (BUNDLED_000, "sep02.txt")
    assert _chunks_of(pipe.store, pid) == chunks_before


def test_new_papers_and_bad_records_are_reported(bundled_copy, tmp_path):
    pipe, _ = bundled_copy
    rows = [{"id": "2501.00001v1", "title": "Zorbulated Widgets for Caching", "abstract":
             "We introduce zorbulated widgets, a caching layer for frobnication services that "
             "halves tail latency.", "update_date": "2025-01-02"},
            {"id": "2501.00002", "title": "No abstract here"}]
    path = write(tmp_path / "new.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    report = pipe.ingest([path])
    assert (report.added, report.updated, report.unchanged) == (1, 0, 0)
    assert report.skipped == ["new.jsonl:2: no abstract (a non-empty string); skipped"]
    assert pipe.store.count_papers() == BUNDLED_PAPERS + 1
    paper = pipe.store.get_papers(["2501.00001"])["2501.00001"]
    assert paper.dates == ("2025-01-02",) and paper.link == "https://arxiv.org/abs/2501.00001"


def test_one_bad_file_does_not_stop_the_good_ones(settings, embedder, tmp_path):
    from rag.pipeline import Pipeline

    pipe = Pipeline(settings, embedder=embedder)
    write(
        tmp_path / "in" / "a.csv",
        "title,abstract\nZorbulated Widgets,"
        "We introduce zorbulated widgets which halve the tail latency of frobnication services.\n",
    )
    write(tmp_path / "in" / "b.txt", "")
    report = pipe.ingest([tmp_path / "in"])
    assert report.added == 1 and report.files == 2
    assert len(report.failed_files) == 1 and "b.txt" in report.failed_files[0]


def test_arxiv_record_of_a_listing_paper_is_the_same_paper(bundled_copy, tmp_path):
    pipe, _ = bundled_copy
    row = {"id": "2412.17560", "title": GQSA, "abstract": _original_abstract(pipe.store),
           "update_date": "2024-12-23"}
    pipe.ingest([write(tmp_path / "snap.jsonl", json.dumps(row) + "\n")])
    assert pipe.store.count_papers() == BUNDLED_PAPERS
    matches = [p for p in pipe.store.iter_papers() if p.title == GQSA]
    assert len(matches) == 1 and "2024-12-23" in matches[0].dates


def test_same_title_with_and_without_arxiv_id_in_one_run_is_one_paper(settings, embedder, tmp_path):
    from rag.pipeline import Pipeline

    abstract = (
        "We introduce zorbulated widgets which halve the tail latency of frobnication services."
    )
    write(
        tmp_path / "in" / "a.csv", f"title,abstract,id\nZorbulated Widgets,{abstract},2501.00001\n"
    )
    write(
        tmp_path / "in" / "b.csv",
        f"title,abstract,date\nZorbulated Widgets,{abstract},2025-02-01\n",
    )
    pipe = Pipeline(settings, embedder=embedder)
    pipe.ingest([tmp_path / "in"])
    assert pipe.store.count_papers() == 1


def test_index_built_with_another_model_refuses_queries(wordllama_dir, embedder):
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    pipe = Pipeline(load_settings(data_dir=wordllama_dir), embedder=embedder)
    with pytest.raises(EmbeddingMismatchError) as err:
        pipe.search("group quantization")
    message = str(err.value)
    assert "wordllama" in message and "ask ingest --rebuild" in message and "\n" not in message


# --- kill and resume ----------------------------------------------------------------------

def _ingest_killed_part_way(data_dir, after: int, jitter_s: float) -> tuple[int, str]:
    """Run `ask ingest --bundled` (wordllama) under a pty; SIGKILL it ``jitter_s`` seconds
    after its progress bar first shows ``after`` or more records done and a paper is
    written (the bar counts records embedded, ahead of the writes)."""
    from reliability.reliability_helpers import read_pty, written_part_way

    master, slave = pty.openpty()
    env = dict(os.environ, ABSTRACTA_EMBEDDER="wordllama", ABSTRACTA_DATA_DIR=str(data_dir),
               ABSTRACTA_CHUNK_TOKENS="110", TERM="xterm", COLUMNS="120")
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", "--bundled"],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    try:
        # The bar counts records (404), of which 358 are papers.
        seen = read_pty(master, proc, written_part_way(data_dir, BUNDLED_RECORDS, after),
                        timeout=120)
        if proc.poll() is None:
            time.sleep(jitter_s)
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        os.close(master)
    return proc.returncode, seen.decode(errors="replace")


@pytest.mark.parametrize("after", [64, 192, 320])
def test_killed_ingest_resumes_to_the_same_index(tmp_path, wordllama_dir, after):
    """Killed early, midway and late (plus a random delay, so the kill lands anywhere in
    the embed/write pipeline), the next run ends with the uninterrupted run's index."""
    import random

    data = tmp_path / "killed"
    jitter = random.Random(after).uniform(0.0, 0.05)  # reproducible, but not a fixed point
    code, output = _ingest_killed_part_way(data, after, jitter)
    assert code == -signal.SIGKILL, f"the ingest was not killed part-way: {output[-500:]}"
    # A late kill can land after the last write (in the lexical build): still a kill,
    # and the next run must still end with the same index (then adding nothing).
    partial = index_snapshot(data)
    assert 0 < partial["paper_count"] <= BUNDLED_PAPERS

    env = dict(os.environ, ABSTRACTA_EMBEDDER="wordllama", ABSTRACTA_DATA_DIR=str(data),
               ABSTRACTA_CHUNK_TOKENS="110")
    resumed = subprocess.run([sys.executable, "-m", "rag.cli", "ingest", "--bundled"],
                             capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    added = BUNDLED_PAPERS - partial["paper_count"]
    assert f"{added} added, 0 updated, {partial['paper_count']} unchanged" in resumed.stdout

    got, want = index_snapshot(data), index_snapshot(wordllama_dir)
    assert got["paper_count"] == want["paper_count"] == BUNDLED_PAPERS
    assert got["chunk_count"] == want["chunk_count"] == len(want["chunks"])
    assert got["papers"] == want["papers"]
    assert got["chunks"] == want["chunks"]
    assert got["chunk_texts"] == want["chunk_texts"]
    assert got["paper_meta"] == want["paper_meta"]


def test_large_ingest_in_a_worker_process_gives_the_same_index(
        wordllama, wordllama_dir, tmp_path, monkeypatch):
    """Large ingests chunk and embed in a spawned worker while the parent writes; the
    index must be exactly what the in-process path builds (ids, texts, hashes)."""
    from rag.ingest import embedding, pool
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    monkeypatch.setattr(embedding, "WORKER_MIN_PAPERS", 1)
    monkeypatch.setattr(pool, "WORKER_PAPERS", 100)  # several jobs, a partial last one
    data = tmp_path / "worker"
    pipe = Pipeline(Settings(data_dir=data, embedder="wordllama", chunk_tokens=110,
                             _env_file=None), embedder=wordllama)
    report = pipe.ingest([BUNDLED])
    assert report.added == BUNDLED_PAPERS
    assert index_snapshot(data) == index_snapshot(wordllama_dir)
    hits = pipe.search("GQSA group quantization and sparse acceleration", k=3)
    assert GQSA in [h.paper.title for h in hits]


# --- streaming: batches of records, deduplicated against the index -------------------------

def _wordllama_pipe(wordllama, data):
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    return Pipeline(Settings(data_dir=data, embedder="wordllama", chunk_tokens=110,
                             auto_ingest_bundled=False, _env_file=None), embedder=wordllama)


def test_bundled_corpus_in_small_batches_gives_the_same_index(wordllama, wordllama_dir,
                                                              tmp_path, monkeypatch):
    """Records read and merged 50 at a time (a large file's path), embedded in worker
    processes in small jobs, a batch's last ones still in flight while the next batch is
    merged: the 46 repeated listings still merge into their papers through the index
    (drained first when they meet a paper in flight), and the index is the one a single
    batch builds. (The in-process path of small batches: the tests below.)"""
    from rag.ingest import embedding, pool, read

    monkeypatch.setattr(read, "MERGE_RECORDS", 50)
    monkeypatch.setattr(embedding, "WORKER_MIN_PAPERS", 1)
    monkeypatch.setattr(pool, "WORKER_PAPERS", 3)
    monkeypatch.setattr(pool, "WRITE_CHUNKS", 20)
    report = _wordllama_pipe(wordllama, tmp_path / "small").ingest([BUNDLED])
    assert (report.added, report.updated, report.unchanged) == (BUNDLED_PAPERS, 0, 0)
    assert report.records == BUNDLED_RECORDS
    assert len(report.merges) == BUNDLED_RECORDS - BUNDLED_PAPERS
    assert index_snapshot(tmp_path / "small") == index_snapshot(wordllama_dir)


def test_batches_merge_like_one_batch(wordllama, tmp_path, monkeypatch):
    """Ids, merges, counts and listings do not depend on where batches are cut: a
    listing before the arXiv record of its paper, two papers named "Summary", one id
    with two abstracts. A re-run leaves the index as it is; cut into batches, a paper
    whose records disagree on the abstract's text is re-embedded on the way (a batch
    cannot know that a later one brings the text back), so it counts as updated."""
    from rag.ingest import read

    rows = [{"title": "GPipe: Pipelines", "abstract": "We pipe.", "update_date": "2019-01-01"},
            {"title": "Summary", "abstract": "Cats purr when content."},
            {"id": "1811.06965", "title": "GPipe: Pipelines", "abstract": "We\n pipe."},
            {"title": "Summary", "abstract": "Dogs bark at strangers."},
            {"id": "2401.00001", "title": "Widgets", "abstract": "First words on widgets."},
            {"title": "Summary", "abstract": "cats  PURR when content"},
            {"id": "2401.00001v2", "title": "Widgets", "abstract": "Second words on widgets."},
            {"title": "Widgets", "abstract": "first words on widgets"}]
    path = write(tmp_path / "in.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    runs = {}
    for size in (1000, 2, 1):
        monkeypatch.setattr(read, "MERGE_RECORDS", size)
        data = tmp_path / f"data{size}"
        pipe = _wordllama_pipe(wordllama, data)
        first = pipe.ingest([path])
        again = pipe.ingest([path])
        snapshot = index_snapshot(data)
        runs[size] = (snapshot, first.added, first.updated, first.unchanged,
                      sorted(first.merges))
        assert again.added == 0 and again.updated + again.unchanged == 4
        assert index_snapshot(data) == snapshot
        if size == 1000:
            assert (again.updated, again.unchanged) == (0, 4)
    assert runs[2] == runs[1000] and runs[1] == runs[1000]
    snapshot, added, updated, unchanged, merges = runs[1000]
    assert snapshot["papers"] == sorted(["1811.06965", "2401.00001", paper_id("Summary"),
                                         [p for p in snapshot["papers"]
                                          if p.startswith(paper_id("Summary") + "-")][0]])
    assert (added, updated, unchanged) == (4, 0, 0)
    assert merges == ["in.jsonl:1 into in.jsonl:3: GPipe: Pipelines",
                      "in.jsonl:6 into in.jsonl:2: Summary",
                      "in.jsonl:7 into in.jsonl:5: Widgets",
                      "in.jsonl:8 into in.jsonl:5: Widgets"]


# --- the worker processes ----------------------------------------------------------------

def _item(n: int, abstract: str):
    from rag.ingest.write import Item
    from rag.types import StoredPaper

    paper = StoredPaper(f"p{n}", f"Paper {n}", abstract, ("2024-01-01",), ("test",))
    return Item(paper, f"hash{n}", 1, False)


def test_worker_processes_answer_each_job_and_fail_loudly(tmp_path):
    """Jobs pass as files and their numbers through pipes: each result is its own
    job's chunks, vectors and words; a job that fails raises its error here, a worker
    that dies (killed: out of memory) is an error, not a hang; stopping removes the
    job folder."""
    from rag.chunk import make_chunker
    from rag.ingest.pool import WorkerDied, Workers
    from rag.settings import Settings
    from rag.text import words

    settings = Settings(data_dir=tmp_path, embedder="wordllama", _env_file=None)
    workers = Workers(settings)
    folder = workers.folder
    try:
        items = [_item(n, f"Widgets number {n} are studied at length. " * (40 * n + 1))
                 for n in range(4)]
        jobs = [workers.submit([item]) for item in items]
        for job, item in zip(jobs, items, strict=True):
            chunks, vectors, cut = workers.result(job)
            assert chunks == make_chunker(settings)(item.paper)
            assert vectors.shape == (len(chunks), 256)
            assert cut == [words(c.text) for c in chunks]
        bad = workers.submit([None])  # type: ignore[list-item]
        with pytest.raises(AttributeError):
            workers.result(bad)
        for proc in workers.procs:
            proc.kill()
        with pytest.raises(WorkerDied):
            workers.result(workers.submit([_item(9, "Widgets.")]))
    finally:
        workers.stop()
    assert not folder.exists()


def test_worker_files_that_cannot_be_written_are_a_one_line_error(tmp_path, monkeypatch):
    """No temp folder for the jobs, or one that vanished (full disk, cleaned /tmp): an
    error that names the folder and says what to do, not a traceback."""
    import shutil
    import tempfile

    from rag.errors import AbstractaError
    from rag.ingest.pool import Workers
    from rag.settings import Settings

    settings = Settings(data_dir=tmp_path, embedder="wordllama", _env_file=None)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(AbstractaError, match=r"missing .*set TMPDIR"):
        Workers(settings)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    workers = Workers(settings)
    try:
        shutil.rmtree(workers.folder)
        with pytest.raises(AbstractaError, match=r"abstracta-ingest-.*set TMPDIR"):
            workers.submit([_item(1, "Widgets.")])
    finally:
        workers.stop()


def test_workers_that_cannot_all_start_leave_no_process_or_folder(tmp_path, monkeypatch):
    """The second worker fails to start (no process slot, no memory): the first one is
    stopped and the job folder removed at once, and the user reads one line."""
    import multiprocessing.context
    import tempfile

    from rag.errors import AbstractaError
    from rag.ingest import pool
    from rag.settings import Settings

    settings = Settings(data_dir=tmp_path, embedder="minilm", _env_file=None)
    monkeypatch.setattr(pool, "worker_plan", lambda s: (2, 1))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    started = []
    real_start = multiprocessing.context.SpawnProcess.start

    def start(proc):
        if started:
            raise OSError(11, "Resource temporarily unavailable")
        real_start(proc)
        started.append(proc)

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", start)
    with pytest.raises(AbstractaError, match=r"worker processes \(Resource temporarily"):
        pool.Workers(settings)
    assert len(started) == 1 and not started[0].is_alive()
    assert not list(tmp_path.glob("abstracta-ingest-*"))
