"""Server mode: a real `chroma run` server shared by several machines (here: Pipelines)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port
from rag_helpers import BUNDLED, assert_lexical_is_a_fresh_build, write

from rag.errors import StoreError

pytestmark = pytest.mark.server

CHROMA = Path(sys.executable).parent / "chroma"


def _start(path: Path, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(path), "--port", str(port), "--host", "127.0.0.1"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("chroma run did not answer its heartbeat within 60 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def server(tmp_path):
    """A `chroma run` server on a free loopback port: (url, restart, stop)."""
    path, port, log = tmp_path / "chroma-server", free_port(), tmp_path / "chroma.log"
    state = {"proc": _start(path, port, log)}

    def stop():
        _stop(state["proc"])

    def restart():
        state["proc"] = _start(path, port, log)

    yield f"http://127.0.0.1:{port}", restart, stop
    if state["proc"].poll() is None:
        _stop(state["proc"])


def _pipeline(url: str, data_dir: Path, embedder):
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    return Pipeline(load_settings(chroma_url=url, data_dir=data_dir), embedder=embedder)


def _few_papers(tmp_path) -> Path:
    """The first 12 papers of the first bundled page (a small, fast corpus)."""
    page = sorted(BUNDLED.iterdir())[0].read_text().split("\n\n")
    start = page.index("Aug 13")
    return write(tmp_path / "few.txt", "\n\n".join(page[:start + 1 + 24]) + "\n")


def test_ingest_answer_outage_and_restart(server, tmp_path, embedder, netguard_log):
    url, restart, stop = server
    pipe = _pipeline(url, tmp_path / "machine-a", embedder)
    report = pipe.ingest([_few_papers(tmp_path)])
    assert report.added == 12
    assert pipe.stats()["mode"] == "chroma server" and pipe.stats()["location"] == url

    ans = pipe.answer("Which paper combines group quantization with structured sparsity?")
    assert not ans.abstained and ans.citations[0].title.startswith("GQSA")

    stop()
    with pytest.raises(StoreError) as err:
        _pipeline(url, tmp_path / "machine-a", embedder).answer("group quantization")
    assert url in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StoreError, match="127.0.0.1"):
        pipe.answer("group quantization")

    restart()
    again = _pipeline(url, tmp_path / "machine-a", embedder)
    ans = again.answer("How does GPipe train giant neural networks?")
    assert not ans.abstained and ans.citations[0].title.startswith("GPipe")
    assert not netguard_log.exists()


def test_cli_against_a_stopped_server_is_a_one_line_error(server, tmp_path):
    from helpers import run_ask
    from rag_helpers import one_line

    url, _, stop = server
    stop()
    res = run_ask("stats", env={"ABSTRACTA_CHROMA_URL": url})
    assert res.returncode != 0 and "Traceback" not in res.stderr
    errors = one_line(res.stderr)
    assert len(errors) == 1 and url in errors[0]


def test_a_second_machine_sees_the_first_ones_papers_in_bm25(server, tmp_path, embedder):
    url, _, _ = server
    first = _pipeline(url, tmp_path / "machine-a", embedder)
    first.ingest([_few_papers(tmp_path)])
    second = _pipeline(url, tmp_path / "machine-b", embedder)
    assert second.store.count_papers() == 12
    hits = second.search("MPIrigen MPI code generation", k=3)
    assert hits[0].paper.title.startswith("MPIrigen") and hits[0].lexical

    # The first machine adds a paper; the second one's BM25 index catches up.
    write(tmp_path / "new.csv", "title,abstract\nQuibblefrost Sketches,We introduce quibblefrost "
          "sketches that count distinct events in constant memory.\n")
    base = second.store.lexical()
    first.ingest([tmp_path / "new.csv"])
    hits = second.search("quibblefrost", k=3)
    assert hits[0].paper.title == "Quibblefrost Sketches" and hits[0].lexical
    # It caught up with the one new paper's chunks (a segment of its own beside the ones
    # it had), rather than reading the whole collection again.
    lex = second.store.lexical()
    assert lex is not base and lex.segments[0].name == base.segments[0].name
    assert len(lex.segments) == len(base.segments) + 1

    # The first machine rewrites that paper (a new abstract): the second one's old rows
    # of it are marked deleted, the new text is found, the old one is not.
    write(tmp_path / "new.csv", "title,abstract\nQuibblefrost Sketches,We introduce "
          "frobnicating counters for heavy hitters in sliding windows.\n")
    first.ingest([tmp_path / "new.csv"])
    hits = second.search("frobnicating counters heavy hitters", k=3)
    assert hits[0].paper.title == "Quibblefrost Sketches" and hits[0].lexical
    lex = second.store.lexical()
    assert any(d is not None for d in lex.deleted)
    assert_lexical_is_a_fresh_build(second.store, tmp_path / "fresh")


def test_a_url_that_is_not_chroma_says_so(tmp_path):
    """Something else answering at ABSTRACTA_CHROMA_URL (a web app, a proxy's 404)."""
    import http.server
    import threading

    from helpers import run_ask
    from rag_helpers import one_line

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()),
                                             http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        res = run_ask("stats", env={"ABSTRACTA_CHROMA_URL": url})
    finally:
        server.shutdown()
    assert res.returncode != 0 and "Traceback" not in res.stderr
    errors = one_line(res.stderr)
    assert len(errors) == 1 and "is not a Chroma server" in errors[0] and url in errors[0]


@pytest.mark.slow
def test_two_writers_on_one_server(server, tmp_path):
    """Two machines ingest 1,200 papers each (above Chroma's sync threshold) into one server
    at the same time: every paper ends readable, findable, and in each machine's BM25."""
    import os
    import random
    import sys as _sys

    sys_path = str(Path(__file__).resolve().parents[1] / "reliability")
    if sys_path not in _sys.path:
        _sys.path.insert(0, sys_path)
    from synthetic import papers, write_csv

    url, _, _ = server
    rows = {name: papers(1200, seed) for name, seed in (("a", 31), ("b", 32))}
    procs = []
    for name, part in rows.items():
        csv = write_csv(tmp_path / f"{name}.csv", part)
        env = dict(os.environ, ABSTRACTA_CHROMA_URL=url, ABSTRACTA_EMBEDDER="wordllama",
                   ABSTRACTA_DATA_DIR=str(tmp_path / f"machine-{name}"))
        procs.append(subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(csv)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    for proc in procs:
        out, err = proc.communicate(timeout=1200)
        assert proc.returncode == 0 and "1200 added" in out, err[-2000:]

    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    for machine in ("machine-a", "machine-c"):  # a writer's cache and a fresh machine
        pipe = Pipeline(load_settings(chroma_url=url, data_dir=tmp_path / machine,
                                      embedder="wordllama"))
        store = pipe.store
        assert store.count_papers() == 2400
        ids = [c.chunk_id for page in store.scan() for c in page]
        assert len(store.vectors(ids)) == 2400 and not store.unreadable(ids)
        lex = store.lexical()
        assert len(lex.chunk_ids) == 2400  # the BM25 generation caught both writers
        titles = [r["title"] for part in rows.values() for r in part]
        for title in random.Random(3).sample(titles, 60):
            assert title in [h.paper.title for h in pipe.search(title, k=5)], title


def test_serving_an_index_built_embedded_keeps_its_lexical_cache(tmp_path, embedder,
                                                                monkeypatch):
    """README's way to serve a large index: build it embedded, then `chroma run --path
    DATA/chroma`. A client with that data dir takes the cache built there (same
    collection) instead of reading every chunk back over HTTP, and finds what the
    embedded pipeline found; a paper added through the server is then caught up."""
    from rag.pipeline import Pipeline
    from rag.settings import load_settings
    from rag.store import cache

    data = tmp_path / "data"
    built = Pipeline(load_settings(data_dir=data), embedder=embedder)
    built.ingest([_few_papers(tmp_path)])
    want = [h.paper.title for h in built.search("MPIrigen MPI code generation", k=5)]
    built.store.lexical()
    del built
    port = free_port()
    proc = _start(data / "chroma", port, tmp_path / "chroma.log")
    try:
        def read_back(*args, **kwargs):
            raise AssertionError("the client read every chunk back")

        client = _pipeline(f"http://127.0.0.1:{port}", data, embedder)
        with monkeypatch.context() as m:
            m.setattr(cache, "build", read_back)
            hits = client.search("MPIrigen MPI code generation", k=5)
        assert [h.paper.title for h in hits] == want and hits[0].lexical
        write(tmp_path / "new.csv", "title,abstract\nQuibblefrost Sketches,We introduce "
              "quibblefrost sketches that count distinct events in constant memory.\n")
        client.ingest([tmp_path / "new.csv"])
        assert client.search("quibblefrost", k=3)[0].paper.title == "Quibblefrost Sketches"
        assert_lexical_is_a_fresh_build(client.store, tmp_path / "fresh")
    finally:
        _stop(proc)
