"""The index: Chroma collections, the generation token and the lexical (BM25) cache."""

from __future__ import annotations

import pytest
from rag_helpers import BUNDLED_PAPERS, write

from rag.errors import StoreError

ABSTRACT = ("We introduce quibblefrost sketches, a streaming summary that counts distinct "
            "frobnication events in constant memory with a provable error bound.")


def _add_paper(pipe, tmp_path, title="Quibblefrost Sketches for Streams"):
    path = write(tmp_path / "new.csv", f"title,abstract\n{title},{ABSTRACT}\n")
    report = pipe.ingest([path])
    assert report.added == 1


def test_lexical_cache_is_written_and_reused(bundled_copy):
    pipe, data = bundled_copy
    lex = pipe.store.lexical()
    assert lex is not None and len(lex.chunk_ids) == pipe.store.count_chunks()
    assert lex.generation == pipe.store.generation() != ""
    assert any((data / "lexical").glob("*/manifest.json"))
    assert pipe.store.lexical() is lex  # same generation: no rebuild


def test_ingest_renews_the_generation_and_the_lexical_index(bundled_copy, tmp_path):
    pipe, _ = bundled_copy
    before = pipe.store.lexical()
    _add_paper(pipe, tmp_path)
    assert pipe.store.generation() != before.generation
    after = pipe.store.lexical()
    assert after is not before and len(after.chunk_ids) == len(before.chunk_ids) + 1
    hits = pipe.search("quibblefrost", k=3)
    assert hits[0].paper.title == "Quibblefrost Sketches for Streams"
    assert hits[0].lexical is not None and hits[0].lexical > 0


def test_a_fresh_process_loads_the_cache_for_the_current_generation(bundled_copy, embedder, tmp_path):
    """A new Pipeline on the same data dir (a new `ask` process) sees the new paper in BM25."""
    from rag.pipeline import Pipeline

    pipe, data = bundled_copy
    pipe.store.lexical()
    _add_paper(pipe, tmp_path)
    other = Pipeline(pipe.settings, embedder=embedder)
    hits = other.search("quibblefrost", k=3)
    assert hits[0].paper.title == "Quibblefrost Sketches for Streams" and hits[0].lexical


def test_a_long_running_pipeline_sees_papers_ingested_by_another(bundled_copy, embedder, tmp_path):
    from rag.pipeline import Pipeline

    pipe, _ = bundled_copy
    reader = Pipeline(pipe.settings, embedder=embedder)
    reader.search("group quantization")  # loads its lexical index
    _add_paper(pipe, tmp_path)
    hits = reader.search("quibblefrost", k=3)
    assert hits[0].paper.title == "Quibblefrost Sketches for Streams"
    assert hits[0].lexical is not None


def test_damaged_lexical_cache_is_rebuilt(bundled_copy, embedder):
    from rag.pipeline import Pipeline

    pipe, data = bundled_copy
    pipe.store.lexical()
    for manifest in (data / "lexical").glob("*/manifest.json"):
        manifest.write_text("{not json")
    other = Pipeline(pipe.settings, embedder=embedder)
    hits = other.search("group quantization sparsity", k=1)
    assert hits[0].paper.title.startswith("GQSA") and hits[0].lexical


def test_rebuild_empties_the_index(bundled_copy):
    pipe, data = bundled_copy
    pipe.store.lexical()
    pipe.store.reset()
    assert pipe.store.count_papers() == 0 and pipe.store.count_chunks() == 0
    assert pipe.store.embed_model is None
    assert pipe.store.lexical() is None


def test_stats_describe_the_index(bundled_pipeline):
    info = bundled_pipeline.stats()
    assert info["papers"] == BUNDLED_PAPERS
    assert info["chunks"] == bundled_pipeline.store.count_chunks() > BUNDLED_PAPERS
    assert info["dates"] == ["--03-11", "--07-11", "--08-13"]
    assert len(info["sources"]) == 4 and info["mode"] == "embedded"
    assert info["embedding_model"] == "all-MiniLM-L6-v2-onnx-int8"


def test_data_dir_that_is_a_file_gives_a_store_error(tmp_path):
    from rag.settings import load_settings
    from rag.store import open_store

    blocker = write(tmp_path / "notadir", "x")
    with pytest.raises(StoreError) as err:
        open_store(load_settings(data_dir=blocker))
    assert str(blocker) in str(err.value) and "\n" not in str(err.value)


def test_bad_chroma_url_is_refused(tmp_path):
    from rag.settings import load_settings
    from rag.store import open_store

    with pytest.raises(StoreError, match="not an http"):
        open_store(load_settings(chroma_url="localhost:8000"))
