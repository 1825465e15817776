"""One writer at a time per embedded index, any number of readers.

Embedded Chroma is not safe for two writing processes: each process keeps its own
in-memory HNSW graph, applies the write log to it and saves it over the same files
every ``sync_threshold`` (1,000) records, then purges the log. Two writers each save
a graph that lacks the other's vectors, over each other's files (measured: two
ingests of 2,500 papers left 612 of 5,367 chunks unreadable, "Error finding id" /
"Error getting embedding"). Two locks in the data directory prevent it:

- ``write.lock``, held for a whole ingest (``ask ingest``, ``--rebuild``, the first-run
  ingest of the bundled corpus, the UI's upload). It records who holds it (pid,
  command, start time) so that a second writer can say whom it waits for.
- ``chroma.lock``, held for moments: exclusively around each Chroma write call, shared
  while a process opens the index (loading the saved graph and replaying the log).
  A reader thus never loads graph files that a writer is halfway through saving, and
  never replays (and saves) the log while the writer does.

Both are ``flock`` locks: the kernel drops them when their process dies, however it
dies, so a lock left by a killed ingest is simply free (and we say whose it was).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import IndexBusyError
from rag.text import display_safe

WRITE_LOCK = "write.lock"
CHROMA_LOCK = "chroma.lock"


def command_line() -> str:
    """This process's command as a user typed it (``ask ingest papers.csv``)."""
    args = list(sys.argv[1:])
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if prog in ("cli.py", "__main__.py", "ask", "-c", ""):
        prog = "ask"
    return display_safe(" ".join([prog, *args]), newlines=False)[:160]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _read_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        holder = json.loads(data.decode("utf-8")) if data.strip() else {}
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def describe(holder: dict) -> str:
    """``pid 4242, `ask ingest a.csv`, since 21:04:05`` (what a waiting writer prints)."""
    since = holder.get("since")
    when = time.strftime("%H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) \
        else "an unknown time"
    command = display_safe(str(holder.get("command") or "unknown command"), newlines=False)
    return f"pid {holder.get('pid', '?')}, `{command}`, since {when}"


WAIT_POLL = 0.25  # seconds between looks at who holds the lock, while a writer waits


def _holder_key(holder: dict) -> tuple:
    return holder.get("pid"), holder.get("since")


def _wait_for(fd: int, holder: dict, on_wait: Callable[[str], None] | None) -> None:
    """Block until the lock is ours. ``on_wait`` is told whom we wait for, and told again
    each time another writer takes the lock first (it would otherwise keep naming a
    process that has finished)."""
    if on_wait is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    on_wait(f"Waiting for another process that is writing this index ({describe(holder)}) "
            "to finish...")
    shown = _holder_key(holder)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        now = _read_holder(fd)
        if now and not now.get("done") and _holder_key(now) != shown:
            shown = _holder_key(now)
            on_wait(f"Still waiting: another process is writing this index now "
                    f"({describe(now)}); this one goes when it finishes...")
        time.sleep(WAIT_POLL)


class WriteLock:
    """The data directory's write lock (see the module docstring). Use :func:`writing`."""

    def __init__(self, data_dir: Path, command: str | None = None):
        self.path = Path(data_dir) / WRITE_LOCK
        self.command = command or command_line()
        self.fd: int | None = None
        self.took_over: dict = {}  # the record a dead holder left, if any

    def acquire(self, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            # A folder we cannot write (read-only share, full disk, not a folder): no
            # writer can work there either, and the store refuses the write with a
            # one-line error that says why.
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                if not wait:
                    raise IndexBusyError(
                        f"Another process is writing the index in {self.path.parent} "
                        f"({describe(holder)}); run the command again when it has finished, "
                        "or leave out --no-wait to wait for it.") from None
                _wait_for(fd, holder, on_wait)
            previous = _read_holder(fd)
            pid = previous.get("pid")
            if isinstance(pid, int) and pid != os.getpid() and not previous.get("done") \
                    and not _alive(pid):
                self.took_over = previous
                if on_wait:
                    on_wait(f"Taking over the write lock left by a process that is no longer "
                            f"running ({describe(previous)}); this run finishes its work.")
            record = json.dumps({"pid": os.getpid(), "command": self.command,
                                 "since": time.time()}).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:  # mark the record finished: a later writer must not report a takeover
            holder = _read_holder(fd)
            holder["done"] = True
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing the descriptor drops the flock


@contextmanager
def writing(settings, *, wait: bool = True, on_wait: Callable[[str], None] | None = None,
            command: str | None = None) -> Iterator[WriteLock | None]:
    """Hold the write lock of the settings' embedded index (nothing in server mode,
    where one ``chroma run`` process owns the files; see README)."""
    if settings.chroma_url:
        yield None
        return
    lock = WriteLock(settings.data_dir, command)
    lock.acquire(wait=wait, on_wait=on_wait)
    try:
        yield lock
    finally:
        lock.release()


class ChromaGuard:
    """The short-held ``chroma.lock`` of one embedded index (see the module docstring).

    Re-entrant within a thread (a write inside a reopen, say); held for moments only.
    """

    def __init__(self, data_dir: Path):
        import threading

        self.path = Path(data_dir) / CHROMA_LOCK
        self._held = threading.local()

    @contextmanager
    def hold(self, exclusive: bool) -> Iterator[None]:
        if getattr(self._held, "on", False):
            yield
            return
        try:
            # flock belongs to an open file description: one per hold, so that threads
            # of one process never release each other's lock.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only or missing folder: no writer can be there either
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            self._held.on = True
            try:
                yield
            finally:
                self._held.on = False
        finally:
            os.close(fd)
