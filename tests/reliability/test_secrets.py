"""Secrets never reach the terminal, logs or run folders.

The API key and the UI password are set to recognizable strings; every CLI path
that touches the LLM (success, a server error that echoes the key, a 401 that
echoes it, an unreachable server, -v) and the eval run folder are searched for
them. The LLM is the OpenAI-compatible stub from tests/llm over real HTTP on
127.0.0.1, or a closed local port.
"""

from __future__ import annotations

import json

import pytest
from helpers import free_port
from reliability_helpers import GOOD_QUESTION, ROOT, run_ask, run_many

KEY = "sk-test-RECOGNIZABLE-abc123"
UI_PASSWORD = "pw-RECOGNIZABLE"
SECRETS = (KEY, UI_PASSWORD, "RECOGNIZABLE")


def secret_env(base_url: str | None = None, **extra: str) -> dict:
    env = {"OPENAI_API_KEY": KEY, "ABSTRACTA_UI_AUTH": f"user:{UI_PASSWORD}",
           "ABSTRACTA_LLM_RETRIES": "0", "ABSTRACTA_LLM_READ_TIMEOUT": "10"}
    if base_url:
        env["OPENAI_BASE_URL"] = base_url
    env.update(extra)
    return env


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        at = text.find(secret)
        assert at < 0, f"{secret!r} printed in {where}: ...{text[max(0, at - 200):at + 200]}"


@pytest.fixture
def stubs():
    """Three stub servers: a normal one, one whose 500s echo the key, one whose 401s do."""
    from openai_stub import Reply, StubOpenAI

    echo = f"upstream failure for key {KEY}; Authorization: Bearer {KEY}"
    ok, err500, err401 = StubOpenAI().start(), StubOpenAI().start(), StubOpenAI().start()
    ok.responder = lambda request: Reply(text="GQSA combines group quantization with sparsity [1].")
    err500.responder = lambda request: Reply(status=500, message=echo)
    err401.responder = lambda request: Reply(status=401, message=f"Incorrect API key: {KEY}")
    yield {"ok": ok, "500": err500, "401": err401}
    for stub in (ok, err500, err401):
        stub.close()


def test_public_dict_masks_secrets(monkeypatch):
    from rag.settings import load_settings

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ABSTRACTA_UI_AUTH", f"user:{UI_PASSWORD}")
    settings = load_settings()
    public = settings.public_dict()
    assert public["openai_api_key"] == "***" and public["ui_auth"] == "***"
    assert_no_secret(json.dumps(public), "public_dict()")
    assert_no_secret(repr(settings) + str(settings), "repr(Settings)")
    assert settings.openai_api_key.get_secret_value() == KEY  # still usable by the client


def test_cli_never_prints_the_key(bundled_dir, stubs, netguard_log):
    data = str(bundled_dir)
    port = free_port()
    runs = {  # name: (args, env)
        "json": (("--json", GOOD_QUESTION, "--data-dir", data), secret_env(stubs["ok"].url)),
        "verbose-500": (("-v", GOOD_QUESTION, "--data-dir", data), secret_env(stubs["500"].url)),
        "refused-port": (("--llm", GOOD_QUESTION, "--data-dir", data),
                         secret_env(f"http://127.0.0.1:{port}/v1")),
        "401": (("--json", GOOD_QUESTION, "--data-dir", data), secret_env(stubs["401"].url)),
        "stats": (("stats", "--data-dir", data), secret_env(stubs["ok"].url)),
    }
    procs = run_many(runs)
    for name, proc in procs.items():
        assert "Traceback" not in proc.stderr, (name, proc.stderr[-3000:])
        assert_no_secret(proc.stdout, f"{name} stdout")
        assert_no_secret(proc.stderr, f"{name} stderr")

    # Each path did what it should (so the absence of the key means something).
    auth = [{k.lower(): v for k, v in r.headers.items()}.get("authorization")
            for r in stubs["ok"].chat_requests]
    assert auth and set(auth) == {f"Bearer {KEY}"}, auth
    assert json.loads(procs["json"].stdout)["answerer"].startswith("llm:")
    assert procs["verbose-500"].returncode == 0 and "offline answer" in procs["verbose-500"].stderr
    assert stubs["500"].chat_requests, "the 500 stub was never asked"
    assert procs["refused-port"].returncode == 0
    assert "offline answer" in procs["refused-port"].stderr, procs["refused-port"].stderr
    assert procs["401"].returncode == 2 and "OPENAI_API_KEY" in procs["401"].stderr
    assert "llm:" in procs["stats"].stdout
    assert not netguard_log.exists(), netguard_log.read_text()


def test_eval_run_folder_holds_no_secret(bundled_dir, stubs, tmp_path):
    if not (ROOT / "eval" / "cli.py").exists():
        pytest.skip("ask eval is not there yet")
    dev = (ROOT / "eval" / "datasets" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    dataset = tmp_path / "tiny.jsonl"
    dataset.write_text("\n".join(dev[:3]) + "\n", encoding="utf-8")
    runs = tmp_path / "runs"
    proc = run_ask("eval", "--dataset", str(dataset), "--runs-dir", str(runs), "--name", "tiny",
                   "--llm", "--data-dir", str(bundled_dir), env=secret_env(stubs["ok"].url))
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_no_secret(proc.stdout + proc.stderr, "ask eval output")
    files = [p for p in (runs / "tiny").rglob("*") if p.is_file()]
    assert any(p.name == "config.json" for p in files), files
    assert len(stubs["ok"].chat_requests) >= 3  # the LLM (and so the key) was really used
    for path in files:
        assert_no_secret(path.read_bytes().decode("utf-8", errors="replace"), str(path))


def test_judge_never_writes_the_key(bundled_dir, stubs, tmp_path):
    """`ask eval --judge` against servers that echo the key: in a 500 body (each judged
    answer is an error, recorded in the run folder) and in a 401 body (the run stops)."""
    dev = (ROOT / "eval" / "datasets" / "dev.jsonl").read_text(encoding="utf-8").splitlines()
    dataset = tmp_path / "tiny.jsonl"
    dataset.write_text("\n".join(dev[:3]) + "\n", encoding="utf-8")
    runs = tmp_path / "runs"
    base = ("eval", "--offline", "--judge", "--dataset", str(dataset), "--runs-dir", str(runs),
            "--data-dir", str(bundled_dir))
    procs = run_many({
        "500": ((*base, "--name", "echo500"), secret_env(stubs["500"].url)),
        "401": ((*base, "--name", "echo401"), secret_env(stubs["401"].url)),
    })
    for name, proc in procs.items():
        assert "Traceback" not in proc.stderr, (name, proc.stderr[-3000:])
        assert_no_secret(proc.stdout + proc.stderr, f"ask eval --judge ({name}) output")
    assert procs["500"].returncode == 0, procs["500"].stderr[-2000:]
    records = [json.loads(line) for line in (runs / "echo500" / "per_question.jsonl").open()]
    errors = [r["judge"]["error"] for r in records if r["judge"]["status"] == "error"]
    assert errors and all("HTTP 500" in e for e in errors), errors
    assert len(stubs["500"].chat_requests) == len(errors)  # the judge really asked
    for path in (runs / "echo500").rglob("*"):
        if path.is_file():
            assert_no_secret(path.read_bytes().decode("utf-8", errors="replace"), str(path))
    assert procs["401"].returncode == 2 and "judge model" in procs["401"].stderr
    assert "OPENAI_API_KEY" in procs["401"].stderr and stubs["401"].chat_requests
