"""Loaded by every Python process the tests start (PYTHONPATH points here).

Refuses any socket connection that is not to loopback or a Unix socket, and
records the attempt in $NETGUARD_LOG, so a test can prove that a
command reached nothing outside this machine.
"""

import os
import socket

_LOG = os.environ.get("NETGUARD_LOG")
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _allowed(sock, address) -> bool:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return True
    host = address[0] if isinstance(address, tuple) else address
    return host in ("localhost", "::1") or str(host).startswith("127.") or host == "0.0.0.0"


def _refuse(address):
    if _LOG:
        with open(_LOG, "a") as fh:
            fh.write(f"{address!r}\n")
    raise OSError(101, f"netguard: outbound connection to {address!r} blocked by the test suite")


def connect(self, address):
    if not _allowed(self, address):
        _refuse(address)
    return _real_connect(self, address)


def connect_ex(self, address):
    if not _allowed(self, address):
        _refuse(address)
    return _real_connect_ex(self, address)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
