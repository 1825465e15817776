"""The bundled sample corpus: the first run that fills an empty index, resumed until it is
complete.

An ingest of the bundled corpus records in the collection that it started, and that it
finished (:func:`rag.ingest.run.ingest_paths`). A first run stopped part-way (Ctrl-C,
SIGTERM of `ask ui`, SIGKILL) leaves "started": the next `ask` / `ask ui` resumes it
(the papers already written are "unchanged", the rest are added), and `ask doctor`
reports the sample corpus as incomplete, naming how many of its papers are in.
"""

from __future__ import annotations

from functools import cache

from rag.ingest.report import IngestReport
from rag.ingest.run import BUNDLED_CORPUS, ingest_paths
from rag.ingest.session import OnWait, write_session
from rag.settings import Settings
from rag.store import Store
from rag.store.store import BUNDLED_STARTED


def needs_bundled_corpus(settings: Settings, store: Store) -> bool:
    """Does the bundled corpus go in now (auto-ingest on)? On a first use (an empty
    index), and after a first run that was stopped part-way (unless the index cannot be
    written: then what is there is answered from)."""
    if not settings.auto_ingest_bundled:
        return False
    return not store.has_papers() or (store.bundled == BUNDLED_STARTED
                                      and not store.read_only)


def ensure_bundled_corpus(settings, store, embedder, progress=None, *, wait: bool = True,
                          on_lock_wait: OnWait | None = None) -> IngestReport | None:
    """Ingest the bundled sample corpus on a first use, or finish a stopped first run."""
    if not needs_bundled_corpus(settings, store):
        return None
    with write_session(store, settings, wait=wait, on_lock_wait=on_lock_wait):
        if not needs_bundled_corpus(settings, store):  # another process did it meanwhile
            return None
        return ingest_paths([BUNDLED_CORPUS], settings, store, embedder, progress)


def unfinished_bundled_corpus(store: Store) -> tuple[int, int] | None:
    """(papers of the bundled corpus in the index, papers in the bundled corpus) when an
    ingest of it was started and never finished; None otherwise."""
    if store.bundled != BUNDLED_STARTED:
        return None
    keys = _bundled_title_keys()
    return len(store.ids_by_title_key(sorted(keys))), len(keys)


@cache
def _bundled_title_keys() -> frozenset[str]:
    """The title keys of the bundled corpus's papers (one per paper: 358)."""
    from rag.identity import title_key
    from rag.ingest.read import open_files, read_records

    streams = open_files([BUNDLED_CORPUS], IngestReport())
    return frozenset(title_key(p.title) for p in read_records(streams, None))
