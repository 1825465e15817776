"""Where the feeds keep their state, under ``<data dir>/feeds/``: a cursor per feed
(``cursors/<key>.json``), the pages as served (``raw/``, provenance), and the last sync
of each feed (``status.json``, what the Library tab shows).

Every file is written whole or not at all (a temporary file beside it, fsynced, then
renamed over it): a sync killed mid-write leaves the previous cursor, never half of
one. A cursor is written only after the index holds its pages' papers
(:mod:`rag.feeds.sync`), so a kill anywhere makes the next sync fetch those pages again.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag import files
from rag.errors import FeedError
from rag.settings import Settings


def feeds_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "feeds"


def load_cursor(settings: Settings, key: str) -> dict:
    """The feed's cursor ({} before its first sync)."""
    return _load(feeds_dir(settings) / "cursors" / f"{_safe(key)}.json")


def save_cursor(settings: Settings, key: str, cursor: dict) -> None:
    write_atomic(feeds_dir(settings) / "cursors" / f"{_safe(key)}.json",
                 json.dumps(cursor, indent=1, sort_keys=True).encode())


def load_status(settings: Settings) -> dict:
    """feed name -> its last sync: ``{"at", "fetched", "added", "pages", "error"}``."""
    return _load(feeds_dir(settings) / "status.json")


def save_status(settings: Settings, status: dict) -> None:
    write_atomic(feeds_dir(settings) / "status.json",
                 json.dumps(status, indent=1, sort_keys=True).encode())


def save_raw(settings: Settings, name: str, body: bytes) -> None:
    """A page as served, under ``feeds/raw/`` (its name is ours, never the server's)."""
    if name and body:
        write_atomic(feeds_dir(settings) / "raw" / name, body)


def write_atomic(path: Path, data: bytes) -> None:
    """:func:`rag.files.write_atomic`, its failure said as a FeedError."""
    try:
        files.write_atomic(path, data)
    except OSError as exc:
        raise FeedError(f"Cannot write {path} ({exc.strerror}); check the data folder's "
                        "permissions and free space.") from exc


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise FeedError(f"{path} cannot be read ({type(exc).__name__}); delete it and the "
                        "next `ask sync` fetches that feed's recent pages again.") from exc
    return data if isinstance(data, dict) else {}


def _safe(key: str) -> str:
    """A file name from a cursor key ("arxiv-cs.CL-rss"): letters, digits, . _ - only."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
