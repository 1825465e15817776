"""Serving rules, the headless /ask endpoint, concurrency, and upload rules."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

GQSA_QUESTION = "Which paper combines group quantization with structured sparsity?"


def test_ui_refuses_other_interfaces_without_auth():
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "rag.cli", "ui", "--host", "0.0.0.0"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "ABSTRACTA_UI_AUTH" in lines[0] and "0.0.0.0" in lines[0]
    assert "Traceback" not in res.stderr
    assert time.perf_counter() - t0 < 30  # refused before loading any model


def test_auth_rules(settings):
    from rag.errors import SettingsError
    from rag.settings import load_settings
    from ui.app import resolve_auth

    assert resolve_auth("127.0.0.1", settings) is None
    assert resolve_auth("localhost", settings) is None
    with pytest.raises(SettingsError, match="ABSTRACTA_UI_AUTH"):
        resolve_auth("192.168.1.5", settings)
    with_auth = load_settings(data_dir=settings.data_dir, ui_auth="ann:s3cret")
    assert resolve_auth("0.0.0.0", with_auth) == ("ann", "s3cret")
    with pytest.raises(SettingsError, match="user:password"):
        resolve_auth("0.0.0.0", load_settings(data_dir=settings.data_dir, ui_auth="nopassword"))


def test_ask_endpoint_returns_the_json_answer(shared_app, netguard_log):
    from gradio_client import Client

    client = Client(shared_app, verbose=False)
    assert "/ask" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    out = client.predict("Which paper combines group quantization with structured sparsity?", 3,
                         api_name="/ask")
    assert out["schema_version"] == 1 and out["abstained"] is False
    assert out["citations"][0]["title"].startswith("GQSA")
    assert "[1]" in out["answer"] and len(out["sources"]) == 3
    assert not netguard_log.exists()


def test_ask_endpoint_reports_bad_questions(shared_app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="(?i)question"):
        Client(shared_app, verbose=False).predict("  ?! ", api_name="/ask")


@pytest.mark.parametrize("k", [-5, 0, 1000])
def test_ask_endpoint_refuses_k_outside_the_clis_range(shared_app, k):
    """Like `ask -k`: 1..100, else one line naming the range (not 15 or 1000 sources)."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="k must be a whole number from 1 to 100") as err:
        Client(shared_app, verbose=False).predict("Which paper proposes GQSA?", k,
                                                  api_name="/ask")
    assert "\n" not in str(err.value).strip()


QUESTIONS = {
    "PLANSEARCH algorithm that searches over natural-language plans for code generation":
        "Planning In Natural Language",
    "paper introducing HumanEval Pro and MBPP Pro for self-invoking code generation":
        "HumanEval Pro and MBPP Pro",
    "ProcessBench benchmark for finding the earliest erroneous step in math solutions":
        "ProcessBench",
    "CHAMP dataset of competition math problems annotated with concepts and hints": "CHAMP",
    "PCB-Merging parameter competition balancing, intra-balancing and inter-balancing":
        "Parameter Competition Balancing",
    "Model Breadcrumbs sparse masks for multi-task model merging": "Model Breadcrumbs",
    "OSWorld benchmark for multimodal agents on Ubuntu, Windows and macOS": "OSWorld",
    "Cybench capture-the-flag (CTF) tasks for evaluating cybersecurity abilities of LM agents":
        "Cybench",
    "DistillSpec: knowledge distillation to align the draft model for speculative decoding":
        "DistillSpec",
    "BEACON benchmark for RNA tasks and RNA language models": "BEACON",
}


def test_ten_clients_at_once_get_their_own_answers(shared_app):
    from gradio_client import Client

    def ask(question: str) -> dict:
        return Client(shared_app, verbose=False).predict(question, 3, api_name="/ask")

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(ask, QUESTIONS))
    for (question, title), out in zip(QUESTIONS.items(), results, strict=False):
        assert out["question"] == question
        assert out["citations"] and out["citations"][0]["title"].startswith(title), out["answer"]


def test_uploads_are_checked_and_bad_files_leave_the_index_unchanged(bundled_copy, tmp_path):
    from rag.pipeline import Pipeline
    from rag.settings import load_settings
    from ui.service import Service

    pipeline, data = bundled_copy
    svc = Service(pipeline)
    before = pipeline.count_papers()
    bad = tmp_path / "notes.csv"
    bad.write_text("just some words\nno header here\n")
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    report, problems, error = svc.ingest([str(bad), str(exe)])
    assert error == ""
    text = svc.describe_ingest(report, problems)
    assert pipeline.count_papers() == before
    assert report.failed_files and "not a format Abstracta reads" in report.failed_files[0]
    assert "notes.csv: not a format Abstracta reads" in text
    assert str(data) not in text  # server paths are not shown
    assert "tool.exe: not accepted" in text
    assert not (data / "uploads" / "tool.exe").exists()
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"{}\n" * 100)
    small_cap = load_settings(data_dir=data, ui_max_upload_mb=0.0001)  # about 100 bytes
    _, problems, _ = Service(Pipeline(small_cap, embedder=pipeline.embedder)).ingest([str(big)])
    assert "over the 0.0001 MB upload limit" in problems[0]


def _start_ui(port: int, data_dir, log) -> subprocess.Popen:
    """`ask ui --port PORT`, its output to the file ``log`` (a pipe nobody reads would fill
    up and stall the server)."""
    import os

    return subprocess.Popen([sys.executable, "-m", "rag.cli", "ui", "--port", str(port)],
                            env=dict(os.environ, ABSTRACTA_DATA_DIR=str(data_dir)),
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def _get(url: str) -> tuple[int, str]:
    """(HTTP status, body); (0, "") when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


@pytest.mark.slow
def test_first_run_serves_the_page_at_once_and_answers_once_indexed(tmp_path):
    """A fresh data dir: a page within 3 s, indexing progress, "still indexing" for an early
    question (not an error page), then answers."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from helpers import free_port

    from ui.placeholder import STATUS_PATH

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    log = tmp_path / "ui.log"
    proc = _start_ui(port, tmp_path / "fresh", log.open("w"))
    try:
        while _get(url + "/")[0] != 200:
            assert proc.poll() is None, log.read_text()
            assert time.perf_counter() - t0 < 3.0, "no page within 3 s"
            time.sleep(0.05)
        served = time.perf_counter() - t0
        seen = set()
        while True:  # the starting page, until Gradio has the port (its 404 for STATUS_PATH)
            code, body = _get(url + STATUS_PATH)
            if code == 404:
                break
            if body:
                seen.add(json.loads(body)["status"].split(":")[0])
            assert time.perf_counter() - t0 < 300, seen
            time.sleep(0.2)
        assert "Indexing the bundled sample corpus" in seen, seen
        client = Client(url + "/", verbose=False)
        early = []
        while True:
            try:
                out = client.predict(GQSA_QUESTION, 3, api_name="/ask")
                break
            except AppError as exc:
                assert "Still indexing the bundled sample corpus" in str(exc), exc
                early.append(str(exc))
            assert time.perf_counter() - t0 < 600
            time.sleep(1)
        assert early  # asked before the corpus was in: told so, in one line
        assert out["citations"][0]["title"].startswith("GQSA")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert "Traceback" not in log.read_text()  # "still indexing" is not an error
    print(f"page served after {served:.2f} s")


def test_a_port_in_use_is_one_line_before_anything_loads(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.perf_counter()
        log = tmp_path / "ui.log"
        proc = _start_ui(port, tmp_path / "data", log.open("w"))
        proc.wait(timeout=60)
        took = time.perf_counter() - t0
        err = log.read_text()
    assert proc.returncode != 0 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"Error: Port {port} on 127.0.0.1 is already in use (another `ask ui`?): "
                     "stop that program, or choose another port with --port (or "
                     "ABSTRACTA_UI_PORT)."], err
    assert took < 10 and not (tmp_path / "data").exists()  # nothing was opened or indexed


# The filled-tmpfs fixture of the reliability tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from test_disk import full_disk  # noqa: E402,F401


def test_full_disk_during_an_upload_is_one_line_on_the_ingest_tab(full_disk, embedder, tmp_path):  # noqa: F811
    from rag.pipeline import Pipeline
    from rag.settings import load_settings
    from ui.service import Service

    data, _ = full_disk
    pipeline = Pipeline(load_settings(data_dir=data), embedder=embedder)
    before = pipeline.count_papers()
    csv = tmp_path / "more.csv"
    csv.write_text("title,abstract\nZorbulated widgets,We measure zorbulated widgets and find "
                   "that they halve the tail latency of frobnication services.\n")
    report, problems, error = Service(pipeline).ingest([str(csv)])
    assert report is None and problems == []
    assert "disk is full" in error and "more.csv" in error and "\n" not in error
    html = Service(pipeline).describe_ingest(report, problems, error)
    assert html.startswith('<p class="ingest-error">⚠ ') and "disk is full" in html
    assert pipeline.count_papers() == before


def test_an_upload_waiting_for_another_writer_is_told_whom_it_waits_for(bundled_copy, tmp_path):
    """Another process holds the index's write lock: the upload waits for it, and the
    Ingest tab hears who it is (not a silent spinner); once the lock is free it goes in."""
    import threading

    from rag.lock import WriteLock
    from ui.service import Service

    pipeline, data = bundled_copy
    svc = Service(pipeline)
    upload = tmp_path / "one.csv"
    upload.write_text("title,abstract,id\nZorblax Lattices,We introduce zorblax lattices that "
                      "order sparse events in constant memory.,2501.09999\n")
    other = WriteLock(data, command="ask ingest big.jsonl")  # its own open file: a second writer
    other.acquire()
    notes: list[str] = []
    told = threading.Event()

    def on_lock_wait(message: str) -> None:
        notes.append(message)
        told.set()

    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(
        out=svc.ingest([str(upload)], on_lock_wait=on_lock_wait)))
    worker.start()
    try:
        assert told.wait(60), "the upload never said it was waiting"
        assert worker.is_alive()  # still waiting: the other writer holds the lock
    finally:
        other.release()
    worker.join(120)
    report, problems, error = result["out"]
    assert error == "" and report.added == 1
    assert len(notes) == 1 and "ask ingest big.jsonl" in notes[0], notes
