"""One writer per index: the index's write lock, held once per store for a write session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rag.lock import writing
from rag.settings import Settings
from rag.store import Store

OnWait = Callable[[str], None]  # told once when this writer waits for another (and why)


@contextmanager
def write_session(store: Store, settings: Settings, *, wait: bool = True,
                  on_lock_wait: OnWait | None = None,
                  command: str | None = None) -> Iterator[None]:
    """Hold the index's write lock (rag/lock.py) while this store writes: an ingest, or
    ``ask doctor --repair``. Re-entrant per store (an ingest inside a session it already
    holds, as :func:`ensure_bundled_corpus` does, does not wait for itself)."""
    if store.writing:
        yield
        return
    with writing(settings, wait=wait, on_wait=on_lock_wait, command=command):
        store.begin_write()
        try:
            yield
        finally:
            store.end_write()

