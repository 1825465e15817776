"""The stream watchdog: cuts a streamed reply that outlives the budget or falls silent."""

from __future__ import annotations

import socket
import threading
import time


class Watchdog(threading.Thread):
    """Cuts a stream that outlives the budget, or that falls silent for ``read_timeout``
    once the model has started writing.

    The socket read timeout cannot do this: it would be the same before the first token
    (a CPU model reads the prompt for minutes) as between tokens. Shutting the socket
    down wakes the reading thread, which then sees the end of the stream.
    """

    def __init__(self, stream, deadline: float, read_timeout: float):
        super().__init__(daemon=True, name="abstracta-llm-watchdog")
        network = getattr(stream, "response", None)
        network = getattr(network, "extensions", {}).get("network_stream")
        self._sock = network.get_extra_info("socket") if network is not None else None
        self.deadline, self.read_timeout = deadline, read_timeout
        self.last: float | None = None  # when the last token came
        self.reason = ""  # "budget" or "silent" once it fired
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            limit = self.deadline if self.last is None else min(
                self.deadline, self.last + self.read_timeout)
            wait = limit - time.monotonic()
            if wait <= 0:
                self.reason = "budget" if limit == self.deadline else "silent"
                self._cut()
                return
            self._done.wait(min(wait, 0.5))  # re-check: ``last`` moves on

    def _cut(self) -> None:
        try:
            if self._sock is not None:
                self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def stop(self) -> None:
        self._done.set()
