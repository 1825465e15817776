"""Opening the index: embedded or a Chroma server, a read-only copy when it must be.

Also finishes the swap of a repair (``ask doctor --repair``) or a rebuild (``ask ingest
--rebuild``) that was stopped in the middle of it (:func:`rag.store.repair.finish_swaps`),
before anything reads the index.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

from rag.errors import StoreError
from rag.lock import ChromaGuard
from rag.settings import Settings
from rag.store.chroma import (
    chroma_settings,
    chunks_name,
    create_chunks,
    disk_full,
    persistent_client,
    wrap_error,
)
from rag.store.repair import finish_swaps
from rag.store.store import Store

CHROMA_DB = "chroma.sqlite3"  # embedded Chroma's database file: there once it has been opened


def _open(settings: Settings, client) -> Store:
    finish_swaps(settings, client)
    return Store(settings, client, create_chunks(client, chunks_name(settings)))


def open_store(settings: Settings) -> Store:
    """Open (creating if needed) the index the settings point at."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    try:
        import chromadb  # noqa: F401 (a clear message when it is missing)
    except ImportError as exc:  # pragma: no cover
        raise StoreError("chromadb is not installed; reinstall Abstracta.") from exc
    try:
        if settings.chroma_url:
            return _open(settings, _http_client(settings.chroma_url))
        return _open_embedded(settings)
    except StoreError:
        raise
    except Exception as exc:
        raise wrap_error(exc, settings, "open") from exc


def _http_client(base: str):
    import chromadb

    url = urlparse(base)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise StoreError(f"ABSTRACTA_CHROMA_URL={base!r} is not an http(s) URL; "
                         "use e.g. http://127.0.0.1:8000.")
    check_is_chroma(base)
    client = chromadb.HttpClient(
        host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
        ssl=url.scheme == "https", settings=chroma_settings(),
    )
    client.heartbeat()
    return client


def _open_embedded(settings: Settings) -> Store:
    import chromadb

    path = settings.data_dir / "chroma"
    try:
        path.mkdir(parents=True, exist_ok=True)
        # Shared chroma.lock: no writer saves the vector index while we load it. The first
        # open creates Chroma's tables: two processes doing that at once collide ("table
        # collections already exists"), so a new folder is opened under the exclusive lock.
        first = not (path / CHROMA_DB).exists()
        with ChromaGuard(settings.data_dir).hold(exclusive=first):
            store = _open(settings, persistent_client(path))
            store.index.collection.get(ids=["\x00"], include=[])  # load the vectors now
        return store
    except Exception as exc:
        snapshot = read_only_snapshot(path, exc)
        if snapshot is None:
            raise
        client = chromadb.PersistentClient(path=str(snapshot), settings=chroma_settings())
        store = _open(settings, client)
        full = disk_full(exc, settings.data_dir)
        why = full or f"the index in {settings.data_dir} cannot be written (read-only)"
        store.index.read_only = f"{why}; answering from a temporary copy"
        return store


def check_is_chroma(base: str) -> None:
    """A URL that answers but not as Chroma would fail deep in the client ("Could not
    connect to tenant", a JSON error): ask its heartbeat first and say what is wrong."""
    import json
    import urllib.error
    import urllib.request

    url = base.rstrip("/") + "/api/v2/heartbeat"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read(4096)
    except urllib.error.HTTPError as exc:
        raise StoreError(f"ABSTRACTA_CHROMA_URL={base} answers, but is not a Chroma server "
                         f"(GET /api/v2/heartbeat: HTTP {exc.code}); point it at a "
                         "`chroma run` server.") from exc
    except (OSError, ValueError):
        return  # not answering at all: the client's own error names the URL
    try:
        ok = "nanosecond heartbeat" in json.loads(body)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise StoreError(f"ABSTRACTA_CHROMA_URL={base} answers, but is not a Chroma server "
                         "(its /api/v2/heartbeat is not Chroma's); point it at a `chroma run` "
                         "server.")


_CANNOT_WRITE = ("readonly database", "read-only file system")


def read_only_snapshot(path: Path, exc: Exception) -> Path | None:
    """A private copy of an index that Chroma cannot open in place, or None.

    Embedded Chroma writes to its SQLite file even to open an index, so an index on a
    read-only share or a full disk could not be read at all. Answering from a copy in
    the temp folder keeps it readable; writes are refused (``Store.read_only``).
    """
    import atexit
    import tempfile

    if not (any(marker in str(exc) for marker in _CANNOT_WRITE) or disk_full(exc, path)):
        return None
    if not (path / CHROMA_DB).is_file():
        return None
    try:
        tmp = Path(tempfile.mkdtemp(prefix="abstracta-readonly-"))
        atexit.register(shutil.rmtree, tmp, True)
        shutil.copytree(path, tmp / "chroma", copy_function=shutil.copyfile)
        for folder, _, files in os.walk(tmp):  # the copy must be writable, unlike the original
            os.chmod(folder, 0o700)
            for name in files:
                os.chmod(os.path.join(folder, name), 0o600)
    except OSError:
        return None
    return tmp / "chroma"
