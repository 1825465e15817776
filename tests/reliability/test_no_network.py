"""Nothing leaves the machine: a whole CLI session reaches no host but loopback.

The session runs in one fresh Python process (started with the netguard, like
every test subprocess) without the telemetry opt-outs the test suite sets, as a
user's shell would be: Abstracta must switch Chroma telemetry off by itself.
Besides the netguard's log of blocked connections, the process records every
DNS lookup of a non-local name (a lookup is the first sign of a phone-home,
even when the connection is then refused), and which heavy libraries each
command imported: the plain CLI must not pull in Gradio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from reliability_helpers import BUNDLED, GOOD_QUESTION, GOOD_TITLE, write_bytes

SESSION = r"""
import json, socket, sys
lookups = []
_real = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host not in (None, "localhost", "::1", "0.0.0.0") and not str(host).startswith("127."):
        lookups.append(str(host))
    return _real(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo

import rag.cli
HEAVY = ("chromadb", "gradio", "gradio_client", "onnxruntime", "openai", "llama_index", "bm25s",
         "torch", "transformers", "huggingface_hub", "posthog")
report = {"lookups": lookups, "imported": {}, "exits": {}}
report["imported"]["import"] = [m for m in HEAVY if m in sys.modules]
for name, argv in json.loads(sys.argv[1]):
    try:
        rag.cli.main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    report["exits"][name] = code
    report["imported"][name] = [m for m in HEAVY if m in sys.modules]
print("REPORT " + json.dumps(report))
"""


def test_cli_session_reaches_nothing_outside_loopback(tmp_path, netguard_log):
    corpus = min(BUNDLED.glob("*.txt")).read_text(encoding="utf-8")
    page = write_bytes(tmp_path / "page.txt", corpus[:corpus.index("MPIrigen")])  # first papers
    data = str(tmp_path / "fresh-index")
    steps = [
        ["help", ["--help"]],
        ["ingest", ["ingest", str(page), "--data-dir", data]],
        ["ask", ["--json", GOOD_QUESTION, "--data-dir", data]],
        ["search", ["search", "pipeline parallelism", "--data-dir", data]],
        ["stats", ["stats", "--data-dir", data]],
    ]
    env = {k: v for k, v in os.environ.items()
           if k not in ("ANONYMIZED_TELEMETRY", "GRADIO_ANALYTICS_ENABLED", "HF_HUB_OFFLINE")}
    proc = subprocess.run([sys.executable, "-c", SESSION, json.dumps(steps)], capture_output=True,
                          check=False, text=True, env=env, timeout=300, cwd=os.getcwd())
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("REPORT ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(line[-1][len("REPORT "):])

    assert report["exits"] == {name: 0 for name, _ in steps}, (report["exits"], proc.stderr[-2000:])
    assert "GQSA" in proc.stdout and GOOD_TITLE in proc.stdout  # the session really worked
    assert not netguard_log.exists(), f"blocked connections: {netguard_log.read_text()}"
    assert report["lookups"] == [], f"non-local DNS lookups: {report['lookups']}"
    assert report["imported"]["import"] == []  # `import rag.cli` stays light
    assert report["imported"]["help"] == []  # `ask --help` stays instant
    for name, modules in report["imported"].items():
        assert "gradio" not in modules and "posthog" not in modules, (name, modules)
