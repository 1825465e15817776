"""Ingesting a bad file never damages the index a user already has.

Each case ingests broken files into a writable copy of the bundled index, then
checks, through a freshly opened store, that the paper and chunk counts are
unchanged and that a known question is still answered from the right paper.
"""

from __future__ import annotations

import json

import pytest
from reliability_helpers import (
    BUNDLED_PAPERS,
    assert_answers,
    index_counts,
    run_ask,
    write_bytes,
)

# Files the loaders refuse as a whole (each one is a SourceError naming it).
BAD_FILES = {
    "binary.bin": bytes(range(256)) * 40,
    "empty.txt": b"",
    "blank.txt": b"  \n\n\t\n",
    "latin1.txt": "new\n\nDaily Papers\n\nAug 13\n\nCaf\xe9 paper\n\n".encode("latin-1") * 3,
    "truncated.jsonl": b'{"id": "2401.00001", "title": "Half a rec',
    "wrongtypes.jsonl": (json.dumps({"title": 42, "abstract": {"a": 1}}) + "\n"
                         + json.dumps({"title": None, "abstract": ["x"]}) + "\n").encode(),
    "noabstracts.csv": b"title,abstract\nOnly a title,\n,Only an abstract\n",
    "prose.txt": b"Dear colleague,\n\nplease find the papers attached.\n",
    "orphan.txt": b"new\n\nDaily Papers\n\nAug 13\n\nA Title Without Its Abstract\n",
}

# Files that hit known loader bugs (see test_loaders_property.py): they must not damage the
# index either, whatever the loader does.
BUGGY_FILES = {
    "quoted-header.csv": 'title, "abstract"\nA Title,An abstract that is long enough.\n',
    "nested.json": "[" * 100_000,
    "bigint.jsonl": '{"title": "T", "abstract": "A", "id": ' + "1" * 5000 + "}\n",
    "surrogate.jsonl": json.dumps({"title": "A title \ud800", "abstract": "An abstract."}) + "\n",
}


def fresh_pipeline(data, embedder):
    """A new Pipeline on data (re-opens Chroma: what the next command would see)."""
    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    return Pipeline(load_settings(data_dir=data), embedder=embedder)


def test_bad_files_leave_the_index_as_it_was(bundled_copy, embedder, tmp_path):
    pipeline, data = bundled_copy
    before = index_counts(data)
    assert before[0] == BUNDLED_PAPERS
    paths = [write_bytes(tmp_path / "bad" / name, content) for name, content in BAD_FILES.items()]
    report = pipeline.ingest(paths)
    assert (report.added, report.updated, report.chunks) == (0, 0, 0), report
    assert len(report.failed_files) == len(BAD_FILES), report.failed_files
    for name in BAD_FILES:
        assert any(name in err for err in report.failed_files), name
    assert all("\n" not in err for err in report.failed_files)
    assert index_counts(data) == before
    assert_answers(fresh_pipeline(data, embedder))


@pytest.mark.parametrize("name", ["nested.json", "bigint.jsonl"])
def test_unreadable_json_is_reported_and_writes_nothing(bundled_copy, embedder, tmp_path, name):
    """JSON too deep or with a 5000-digit number: one failed file, nothing written."""
    pipeline, data = bundled_copy
    before = index_counts(data)
    path = write_bytes(tmp_path / name, BUGGY_FILES[name])
    report = pipeline.ingest([path])
    assert len(report.failed_files) == 1 and name in report.failed_files[0]
    assert "\n" not in report.failed_files[0]
    assert index_counts(data) == before
    assert_answers(fresh_pipeline(data, embedder))


@pytest.mark.parametrize("name", ["quoted-header.csv", "surrogate.jsonl"])
def test_quirky_but_valid_files_load_their_paper(bundled_copy, tmp_path, name):
    """A header written 'title, "abstract"' and a title with a lone surrogate escape
    are still one readable paper each (the surrogate becomes a replacement mark)."""
    pipeline, data = bundled_copy
    before = index_counts(data)
    report = pipeline.ingest([write_bytes(tmp_path / name, BUGGY_FILES[name])])
    assert report.added == 1 and not report.failed_files, report
    assert index_counts(data)[0] == before[0] + 1


def test_cli_ingest_of_bad_files(bundled_copy, embedder, tmp_path):
    """`ask ingest` names every bad file on one line each, exits 1, and the index is intact."""
    _, data = bundled_copy
    before = index_counts(data)
    paths = [str(write_bytes(tmp_path / "bad" / name, content))
             for name, content in BAD_FILES.items()]
    proc = run_ask("ingest", *paths, "--data-dir", str(data))
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    assert proc.returncode == 1, out[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == len(BAD_FILES), proc.stderr
    for name in BAD_FILES:
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert f"Index: {BUNDLED_PAPERS} papers" in proc.stdout, proc.stdout
    assert index_counts(data) == before
    assert_answers(fresh_pipeline(data, embedder))


def test_cli_ingest_of_a_quoted_csv_header(bundled_copy, embedder, tmp_path):
    _, data = bundled_copy
    before = index_counts(data)
    path = write_bytes(tmp_path / "export.csv", BUGGY_FILES["quoted-header.csv"])
    proc = run_ask("ingest", str(path), "--data-dir", str(data))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "1 added" in proc.stdout
    assert index_counts(data)[0] == before[0] + 1
