"""Unusable data folders give a clear error naming the folder; indexes survive them.

The folder cases a user meets: ``--data-dir`` pointing at a file, or at a path
under a file, and an index folder they cannot write (a shared, read-only copy).
Tests run as root, which ignores file modes, so the read-only cases run the CLI
with the file-permission capabilities dropped (``setpriv``), which makes the
modes apply to it.

Found while writing these: embedded Chroma cannot open an index in a read-only
folder at all (its ``PersistentClient`` writes its SQLite file on open: "attempt
to write a readonly database"), so a read-only *index* would get an error rather
than an answer; rag/store/open.py answers from a temporary copy instead and refuses
writes with a clear error. A read-only *data folder* whose ``chroma/`` is writable answers in
place (the lexical cache is optional). A full disk is handled like a read-only index.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from reliability_helpers import (
    GOOD_QUESTION,
    GOOD_TITLE,
    answer_json,
    assert_answers,
    assert_clean_failure,
    index_counts,
    run_ask,
    without_root_powers,
    write_bytes,
)

from rag.errors import StoreError


def pipeline_on(data: Path, embedder):
    from rag import Pipeline, load_settings

    return Pipeline(load_settings(data_dir=data), embedder=embedder)


@pytest.mark.parametrize("under", [False, True], ids=["file", "under-a-file"])
@pytest.mark.parametrize("operation", ["stats", "answer", "ingest"])
def test_data_dir_that_is_not_a_folder(tmp_path, embedder, operation, under):
    blocker = write_bytes(tmp_path / "notes.txt", "I am a file, not a folder.\n")
    data = blocker / "index" if under else blocker
    pipeline = pipeline_on(data, embedder)
    call = {"stats": lambda: pipeline.stats(),
            "answer": lambda: pipeline.answer(GOOD_QUESTION),
            "ingest": lambda: pipeline.ingest([write_bytes(tmp_path / "p.jsonl", "{}\n")])}
    with pytest.raises(StoreError) as err:
        call[operation]()
    message = str(err.value)
    assert "\n" not in message and str(data) in message, message
    assert blocker.read_text() == "I am a file, not a folder.\n"  # left alone


def _make_read_only(path: Path) -> None:
    for item in [path, *path.rglob("*")]:
        mode = item.stat().st_mode
        item.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(path: Path) -> None:
    for item in [path, *path.rglob("*")]:
        item.chmod(item.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def read_only_copy(bundled_copy):
    """(data dir, (papers, chunks) before): a copy of the bundled index, every file read-only."""
    prefix = without_root_powers()
    if prefix:
        if shutil.which(prefix[0]) is None:
            pytest.skip("setpriv (util-linux) is missing: root cannot be made to obey file modes")
        probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
        if probe.returncode != 0:
            pytest.skip(f"cannot drop capabilities here ({probe.stderr.decode().strip()})")
    _, data = bundled_copy
    before = index_counts(data)
    _make_read_only(data)
    yield data, before
    _make_writable(data)


def test_read_only_index_gives_a_clear_error_and_survives(read_only_copy, embedder, tmp_path):
    data, before = read_only_copy
    proc = run_ask("--json", GOOD_QUESTION, "--data-dir", str(data), obey_permissions=True)
    # Embedded Chroma cannot open it in place ("attempt to write a readonly database"):
    # the answer comes from a temporary copy, with a note that says so.
    assert answer_json(proc)["citations"][0]["title"] == GOOD_TITLE
    assert "cannot be written" in proc.stderr and str(data) in proc.stderr
    new = write_bytes(tmp_path / "new.jsonl", '{"title": "A New Paper On Graphs", '
                      '"abstract": "We study graphs and find that they are useful."}\n')
    proc = run_ask("ingest", str(new), "--data-dir", str(data), obey_permissions=True)
    assert_clean_failure(proc, names=str(data))
    _make_writable(data)
    assert index_counts(data) == before
    assert_answers(pipeline_on(data, embedder))


def test_read_only_data_dir_with_writable_chroma_still_answers(bundled_copy):
    """The lexical cache cannot be written: the answer comes anyway (cache rebuilt in memory)."""
    if without_root_powers() and shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is missing: root cannot be made to obey file modes")
    _, data = bundled_copy
    shutil.rmtree(data / "lexical", ignore_errors=True)
    data.chmod(0o555)
    try:
        proc = run_ask("--json", GOOD_QUESTION, "--data-dir", str(data), obey_permissions=True)
        assert not (data / "lexical").exists()  # the folder really was read-only
    finally:
        data.chmod(0o755)
    assert answer_json(proc)["citations"][0]["title"] == GOOD_TITLE
    assert os.access(data, os.W_OK)


@pytest.fixture
def full_disk(bundled_dir, tmp_path):
    """A copy of the bundled index on a small tmpfs that is then filled to the last byte.

    Yields (data dir, filler file). Needs root and a kernel that lets it mount tmpfs
    (true here and in CI); skipped with the reason otherwise.
    """
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    probe = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mnt)],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({probe.stderr.strip()})")
    try:
        data = mnt / "data"
        shutil.copytree(bundled_dir, data)
        filler = mnt / "filler"
        with open(filler, "wb", buffering=0) as fh:  # unbuffered: close() has nothing to flush
            for size in (1 << 20, 4096, 512, 1):  # big blocks, then the last scraps
                try:
                    while fh.write(b"\0" * size):
                        pass
                except OSError:
                    pass
        yield data, filler
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_gives_a_clear_error_and_the_index_still_answers(full_disk, tmp_path):
    data, filler = full_disk
    rows = "".join(f"Zorbulated widget study {i},We measure zorbulated widgets of kind {i} and "
                   f"find that they halve the tail latency of frobnication services.\n"
                   for i in range(40))
    csv = write_bytes(tmp_path / "more.csv", ("title,abstract\n" + rows).encode())

    proc = run_ask("ingest", str(csv), "--data-dir", str(data))
    line = assert_clean_failure(proc)
    assert f"the disk holding {data} is full (" in line, line
    assert "MB free); free space and run the same command again" in line, line

    # Embedded Chroma writes to its SQLite file even to open an index; with the disk full
    # the index is still read, from a temporary copy, and the answer says so.
    proc = run_ask("--json", GOOD_QUESTION, "--data-dir", str(data))
    out = answer_json(proc)
    assert out["citations"] and out["citations"][0]["title"] == GOOD_TITLE
    assert f"the disk holding {data} is full (" in proc.stderr

    # Space is back: the same ingest completes, and nothing indexed before was lost.
    filler.unlink()
    proc = run_ask("ingest", str(csv), "--data-dir", str(data))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert index_counts(data)[0] == 358 + 40


# --- a full disk met at the write boundary (injected ENOSPC) ------------------------------
# The tmpfs test above fills the disk before the run. These inject the failure into the
# chunk writes themselves (Chroma's upsert/add), the way a disk that fills during an ingest
# meets it: as ENOSPC, or as Chroma's compaction failure, which says nothing of the disk.

COMPACTION = ("Error in compaction: Failed to apply logs to the metadata segment")


@pytest.mark.parametrize("failure", ["enospc", "compaction"])
def test_injected_enospc_at_the_write_boundary_says_the_disk_is_full(bundled_copy, tmp_path,
                                                                     monkeypatch, failure):
    import errno

    from rag.store import chroma

    pipe, data = bundled_copy
    csv = write_bytes(tmp_path / "more.csv", "title,abstract\n" + "".join(
        f"Zorbulated widget study {i},We measure zorbulated widgets of kind {i}.\n"
        for i in range(3)))
    collection_type = type(pipe.store.index.collection)

    def full(*args, **kwargs):
        if failure == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise RuntimeError(COMPACTION)

    with monkeypatch.context() as patch:
        patch.setattr(collection_type, "upsert", full)
        patch.setattr(collection_type, "add", full)
        patch.setattr(chroma, "free_mb", lambda folder: 3.0)  # almost nothing left
        with pytest.raises(StoreError) as err:
            pipe.ingest([csv])
    message = str(err.value)
    assert "\n" not in message
    assert (f"the disk holding {data} is full (3 MB free); free space and run the same "
            "command again") in message, message

    report = pipe.ingest([csv])  # space is back: the same command finishes
    assert report.added == 3 and pipe.count_papers() == 358 + 3
    assert_answers(pipe)


def test_a_compaction_failure_with_room_on_the_disk_is_not_called_a_full_disk(tmp_path):
    from rag.settings import Settings
    from rag.store.chroma import wrap_error

    message = str(wrap_error(RuntimeError(COMPACTION), Settings(data_dir=tmp_path,
                                                                _env_file=None), "write"))
    assert "full" not in message and "readable and writable" in message
