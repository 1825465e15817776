"""No network: answering on a fresh data dir (first-run ingest included) stays on this machine."""

from __future__ import annotations

from helpers import run_ask
from rag_helpers import BUNDLED_PAPERS


def test_first_question_with_the_default_embedder_attempts_no_connection(tmp_path, netguard_log):
    res = run_ask("--json", "How does GPipe scale giant neural networks with pipeline parallelism?",
                  env={"ABSTRACTA_DATA_DIR": str(tmp_path / "fresh")}, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"{BUNDLED_PAPERS} added" in res.stderr
    assert '"abstained": false' in res.stdout and "GPipe" in res.stdout
    assert not netguard_log.exists(), netguard_log.read_text()


def test_netguard_does_record_a_blocked_connection(netguard_log):
    """The guard itself works (otherwise the test above proves nothing)."""
    import socket

    sock = socket.socket()
    try:
        sock.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed; blocked before any packet
    except OSError:
        pass
    finally:
        sock.close()
    assert netguard_log.exists()
