"""Helpers shared by every test folder (tests/ is on sys.path through tests/conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


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
