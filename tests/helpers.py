"""Helpers shared by every test folder (tests/ is on sys.path through tests/conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def run_ask(*args, env: dict | None = None, input: str | None = None, timeout: float = 180,
            prefix: tuple[str, ...] | list[str] = ()):
    """Run the real `ask` CLI in a subprocess, which inherits the netguard.

    ``prefix`` runs it under another command (e.g. setpriv to drop root's powers).
    """
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([*prefix, sys.executable, "-m", "rag.cli", *map(str, args)],
                          capture_output=True, check=False, text=True, env=full_env,
                          input=input, timeout=timeout, cwd=os.getcwd())


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released): for a server to start
    on, or for a client to find closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# A tiny arXiv metadata JSON Lines corpus whose papers carry categories and authors, for
# the category and author filters (tests/rag/retrieve/test_filters.py, tests/ui). Ids are
# 2401.00001 .. 2401.00008, listed 2024-01-02 .. 2024-01-09 in that order.
FILTERS_JSONL = Path(__file__).parent / "data" / "arxiv_filters.jsonl"


def filters_index(data_dir, embedder):
    """A Pipeline over ``data_dir`` with :data:`FILTERS_JSONL` ingested."""
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    pipeline = Pipeline(Settings(data_dir=data_dir, _env_file=None), embedder=embedder)
    assert pipeline.ingest([FILTERS_JSONL]).added == 8
    return pipeline
