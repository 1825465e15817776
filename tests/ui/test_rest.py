"""The JSON REST API under /api/v1 (ui/rest.py), over real HTTP against a running app, and
the starting page's 503s for every API path."""

from __future__ import annotations

import json
import time

import httpx
import pytest

GQSA_QUESTION = "Which paper combines group quantization with structured sparsity?"


def wait_ready(url: str, auth=None, timeout: float = 300) -> dict:
    """Poll /api/v1/health until it says ready; its body."""
    t0 = time.perf_counter()
    while True:
        res = httpx.get(f"{url}/api/v1/health", auth=auth, timeout=30)
        if res.status_code == 200:
            return res.json()
        assert res.status_code == 503 and res.json()["status"] == "starting", res.text
        assert res.headers["Retry-After"].isdigit()
        assert time.perf_counter() - t0 < timeout
        time.sleep(0.2)


@pytest.fixture(scope="module")
def api(shared_app):
    url = shared_app.rstrip("/")
    health = wait_ready(url)
    assert health["status"] == "ready" and health["papers"] > 300
    return f"{url}/api/v1"


def test_ask_returns_the_ask_json_contract(api, netguard_log):
    res = httpx.post(f"{api}/ask", json={"question": GQSA_QUESTION, "k": 3}, timeout=120)
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/json")
    out = res.json()
    assert out["schema_version"] == 1 and out["question"] == GQSA_QUESTION
    assert out["abstained"] is False and len(out["sources"]) == 3
    assert out["citations"] and out["citations"][0]["title"].startswith("GQSA")
    sources = {s["paper_id"] for s in out["sources"]}
    assert all(c["paper_id"] in sources for c in out["citations"])
    assert {"answer", "supported", "answerer", "note", "timings_ms"} <= set(out)
    assert not netguard_log.exists()


def test_search_paper_and_similar(api):
    res = httpx.get(f"{api}/search", params={"q": "group quantization structured sparsity",
                                             "k": 4}, timeout=60)
    assert res.status_code == 200, res.text
    hits = res.json()
    assert len(hits) == 4 and hits[0]["title"].startswith("GQSA")
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    pid = hits[0]["paper_id"]
    paper = httpx.get(f"{api}/papers/{pid}", timeout=60).json()
    assert paper["paper_id"] == pid and paper["title"] == hits[0]["title"] and paper["abstract"]
    res = httpx.get(f"{api}/papers/{pid}/similar", params={"k": 5}, timeout=60)
    assert res.status_code == 200, res.text
    similar = res.json()
    assert len(similar) == 5 and pid not in {h["paper_id"] for h in similar}


def test_search_filters_by_date(api):
    first = httpx.get(f"{api}/search", params={"q": "language models", "k": 1},
                      timeout=60).json()[0]
    day = first["date"]
    res = httpx.get(f"{api}/search", params={"q": "language models", "k": 20, "since": day,
                                             "until": day}, timeout=60)
    assert res.status_code == 200, res.text
    assert res.json() and all(day in hit["dates"] for hit in res.json())


@pytest.mark.parametrize(("method", "path", "payload", "code", "says"), [
    ("GET", "/search", {"q": "sparsity", "k": -5}, 400, "k must be a whole number from 1 to 100"),
    ("GET", "/search", {"q": "sparsity", "k": 1000}, 400, "from 1 to 100"),
    ("GET", "/search", {"q": "sparsity", "k": "many"}, 422, "k"),
    ("GET", "/search", {}, 422, "q"),
    ("POST", "/ask", {"question": "", "k": 3}, 400, "question"),
    ("POST", "/ask", {"question": "sparsity?", "k": 1000}, 400, "from 1 to 100"),
    ("POST", "/ask", {"question": "x" * 10_001}, 400, "at most 10,000"),
    ("POST", "/ask", {"question": "sparsity?", "since": "someday"}, 400, "someday"),
    ("GET", "/papers/no-such-paper-9999", None, 404, "no-such-paper-9999"),
    ("GET", "/papers/no-such-paper-9999/similar", {"k": 3}, 404, "no-such-paper-9999"),
    ("GET", "/papers/2412.00000/similar", {"k": 0}, 400, "from 1 to 100"),
    ("GET", "/nothing-here", None, 404, "Not Found"),
])
def test_bad_requests_are_json_errors_in_one_line(api, method, path, payload, code, says):
    if method == "GET":
        res = httpx.get(api + path, params=payload, timeout=60)
    else:
        res = httpx.post(api + path, json=payload, timeout=60)
    assert res.status_code == code, res.text
    error = res.json()["error"]
    assert says in error and "\n" not in error and "Traceback" not in error


def test_openapi_describes_the_routes(api):
    spec = httpx.get(f"{api}/openapi.json", timeout=30).json()
    assert {"/ask", "/search", "/papers/{paper_id}", "/papers/{paper_id}/similar",
            "/health"} <= set(spec["paths"])
    k = next(p for p in spec["paths"]["/search"]["get"]["parameters"] if p["name"] == "k")
    assert (k["schema"]["minimum"], k["schema"]["maximum"]) == (1, 100)
    assert {"type": "integer"} in k["schema"]["anyOf"]
    assert httpx.get(f"{api}/docs", timeout=30).status_code == 404  # no page from a CDN


def test_with_auth_no_api_path_answers_without_credentials(bundled_dir, embedder, launch_app):
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    settings = Settings(data_dir=bundled_dir, ui_auth="ann:s3cret", _env_file=None)
    url = launch_app(settings, Pipeline(settings, embedder=embedder)).rstrip("/")
    wait_ready(url, auth=("ann", "s3cret"))
    api = f"{url}/api/v1"
    for creds in (None, ("ann", "wrong"), ("bob", "s3cret")):
        for path in ("/health", "/search?q=sparsity", "/papers/x", "/openapi.json", "/nope"):
            res = httpx.get(api + path, auth=creds, timeout=30)
            assert res.status_code == 401, (path, res.text)
            assert res.headers["WWW-Authenticate"].startswith("Basic")
            assert "s3cret" not in res.text and "error" in res.json()
        res = httpx.post(f"{api}/ask", json={"question": GQSA_QUESTION}, auth=creds, timeout=30)
        assert res.status_code == 401
    assert httpx.get(f"{url}/config", timeout=30).status_code == 401  # Gradio's own paths too
    ok = httpx.post(f"{api}/ask", json={"question": GQSA_QUESTION, "k": 3},
                    auth=("ann", "s3cret"), timeout=120)
    assert ok.status_code == 200 and ok.json()["citations"]
    assert httpx.get(f"{api}/search", params={"q": "sparsity"}, auth=("ann", "s3cret"),
                     timeout=60).status_code == 200


def _starting_answers(url: str) -> None:
    """What the starting page says to API clients: 503, Retry-After and JSON, never HTML."""
    from gradio_client import Client

    for method, path in [("POST", "/api/v1/ask"), ("GET", "/api/v1/search?q=x"),
                         ("GET", "/config"), ("GET", "/gradio_api/info"),
                         ("POST", "/gradio_api/queue/join"), ("POST", "/login"),
                         ("GET", "/info?all_endpoints=True")]:
        res = httpx.request(method, url + path, json={"question": GQSA_QUESTION}, timeout=10)
        assert res.status_code == 503, (path, res.text[:200])
        assert res.headers["Retry-After"] == "5"
        assert res.headers["content-type"] == "application/json"
        body = res.json()
        assert body["status"] == "starting" and "retry in 5 s" in body["error"], body
    health = httpx.get(f"{url}/api/v1/health", timeout=10)
    assert health.status_code == 503 and health.headers["Retry-After"] == "5"
    assert health.json()["status"] == "starting" and "indexed" in health.json()
    with pytest.raises(Exception) as caught:
        Client(url + "/", verbose=False)
    assert not isinstance(caught.value, json.JSONDecodeError), caught.value


def test_the_starting_page_answers_api_paths_with_503_json():
    from helpers import free_port

    from ui.placeholder import Placeholder

    port = free_port()
    progress = {"status": "starting", "indexed": 12, "total": 358}
    page = Placeholder("127.0.0.1", port, status=lambda: "Indexing: 12 of 358 records…",
                       health=lambda: progress)
    try:
        url = f"http://127.0.0.1:{port}"
        _starting_answers(url)
        health = httpx.get(f"{url}/api/v1/health", timeout=10).json()
        assert (health["indexed"], health["total"]) == (12, 358)
        home = httpx.get(url + "/", timeout=10)  # the page itself is still the page
        assert home.status_code == 200 and home.text.startswith("<!doctype html>")
    finally:
        page.close()


@pytest.mark.slow
def test_first_run_health_goes_from_starting_to_ready(tmp_path):
    """`ask ui` on an empty data dir: 503s with JSON while it starts, health with the
    indexing progress, then ready and answers."""
    from helpers import free_port
    from test_ui_serving import _start_ui

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "ui.log"
    proc = _start_ui(port, tmp_path / "fresh", log.open("w"))
    t0 = time.perf_counter()
    try:
        while True:  # the starting page
            try:
                if httpx.get(url + "/", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.perf_counter() - t0 < 30, log.read_text()
            time.sleep(0.05)
        _starting_answers(url)
        seen, asked = set(), set()
        while True:
            try:
                res = httpx.get(f"{url}/api/v1/health", timeout=10)
            except httpx.TransportError:  # the port is being handed over to Gradio
                continue
            body = res.json()
            if res.status_code == 200:
                break
            assert res.status_code == 503 and body["status"] == "starting", body
            seen.add((body["indexed"] > 0, body["total"] > 0))
            try:  # the placeholder's 503, or the app's
                early = httpx.post(f"{url}/api/v1/ask", json={"question": GQSA_QUESTION},
                                   timeout=10)
            except httpx.TransportError:  # the handover again
                continue
            if early.status_code != 200:
                assert early.status_code == 503 and early.headers["Retry-After"] == "5"
                assert "retry in 5 s" in early.json()["error"], early.text
                asked.add(early.json().get("status"))  # "starting": the placeholder's
            assert time.perf_counter() - t0 < 600, body
            time.sleep(0.3)
        assert (True, True) in seen  # progress was shown
        assert None in asked  # asked while Gradio served and the corpus was not in yet
        assert body == {"status": "ready", "papers": body["papers"]} and body["papers"] > 300
        out = httpx.post(f"{url}/api/v1/ask", json={"question": GQSA_QUESTION, "k": 3},
                         timeout=120).json()
        assert out["citations"][0]["title"].startswith("GQSA")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert "Traceback" not in log.read_text()
