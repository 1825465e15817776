"""A clean stop: Ctrl-C and SIGTERM end a run as Interrupted, saying how far it got."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rag.errors import Interrupted
from rag.ingest.report import Run


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (exit code 143 instead of 130)."""

    exit_code = 143


@contextmanager
def stoppable(run: Run) -> Iterator[Run]:
    """Turn Ctrl-C and SIGTERM into :class:`Interrupted` with how far the run got.

    Papers are committed one by one (chunk #0 last), so whatever was written stays and
    the same command finishes the rest.
    """
    old = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):
            raise _Terminated()

        old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield run
    except KeyboardInterrupt as exc:
        raise Interrupted(f"Stopped after {run.done} of {run.total} records; run the same "
                          "command again to finish.", getattr(exc, "exit_code", 130)) from None
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
