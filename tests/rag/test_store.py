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


def test_a_fresh_process_loads_the_cache_for_the_current_generation(
    bundled_copy, embedder, tmp_path
):
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


def _manifests(data):
    return {m.parent.name: m.stat().st_ino for m in (data / "lexical").glob("*/manifest.json")}


def test_a_moved_data_dir_keeps_its_lexical_cache(bundled_copy, embedder, tmp_path):
    """A data dir restored from a backup or moved to another path answers at once: its BM25
    cache is still current, so it is loaded, not rebuilt (a rebuild at 1M chunks: minutes)."""
    import shutil

    from rag.pipeline import Pipeline
    from rag.settings import load_settings

    pipe, data = bundled_copy
    pipe.store.lexical()
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(data, moved)
    before = _manifests(moved)
    other = Pipeline(load_settings(data_dir=moved), embedder=embedder)
    hits = other.search("group quantization sparsity", k=1)
    assert hits[0].paper.title.startswith("GQSA") and hits[0].lexical
    assert _manifests(moved) == before  # same folder, same files: nothing rebuilt


def test_a_cache_named_by_the_old_path_key_is_adopted(bundled_copy, embedder):
    """Caches that an older Abstracta named by the data dir's path are renamed, not rebuilt
    beside a stale copy."""
    import hashlib

    from rag.pipeline import Pipeline

    pipe, data = bundled_copy
    pipe.store.lexical()
    (name, inode), = _manifests(data).items()
    old = hashlib.sha1(f"{data.resolve()}|{pipe.settings.collection}".encode()).hexdigest()[:12]
    (data / "lexical" / name).rename(data / "lexical" / old)
    other = Pipeline(pipe.settings, embedder=embedder)
    assert other.search("group quantization sparsity", k=1)[0].lexical
    assert _manifests(data) == {name: inode}


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
    pipe.ingest([], rebuild=True)
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


def test_bm25_scores_match_bm25s_with_stemming(bundled_pipeline):
    """Our BM25 matrix, built with numpy over rag.text.terms, scores exactly as bm25s
    (Lucene BM25, k1 1.2, b 0.75) does over the same terms; and those terms are bm25s's
    own (its tokenizer, English stop words, the PyStemmer English stemmer) wherever the
    text has no British spelling or number form for rag.text to bring to one form."""
    import bm25s
    import numpy as np
    import Stemmer

    from rag.lexical import K1, B
    from rag.store import snapshot
    from rag.text import terms

    stemmer = Stemmer.Stemmer("english")
    lex = bundled_pipeline.store.lexical()
    text_of = {cid: r.text for cid, r in snapshot(bundled_pipeline.store).items()}
    corpus = [text_of[str(c)] for c in lex.chunk_ids]
    reference = bm25s.BM25(k1=K1, b=B)
    reference.index([terms(text) for text in corpus], show_progress=False)
    for question in ["Which paper proposes GPipe?", "group quantization with structured "
                     "sparsity for LLM inference", "diffusion diffusion models for video",
                     "the of and", "zzzunknownword"]:
        q = terms(question)
        ref_q = bm25s.tokenize(question, stopwords="en", stemmer=stemmer, return_ids=False,
                               show_progress=False)[0]
        assert q == ref_q  # plain questions: the same analyzer as bm25s's
        known = [w for w in q if w in reference.vocab_dict]
        expected = reference.get_scores(known) if known else np.zeros(len(lex.chunk_ids))
        np.testing.assert_allclose(lex.scores(q), expected, rtol=1e-5, atol=1e-6)
        for w in known:
            assert lex.doc_freq(w) == int(np.count_nonzero(reference.get_scores([w])))
    # Word forms meet: "proposes", "proposed" and "proposing" are one term.
    assert lex.scores(terms("proposes")).tolist() == lex.scores(terms("proposing")).tolist()
    assert lex.doc_freq("propos") > 0


def test_an_ask_process_with_a_cached_index_never_imports_bm25s(bundled_copy):
    """The query path maps the cached arrays: bm25s and scipy stay out of `ask`, and so
    does numba below the compiled scan's size (rag.lexical.SCAN_ROWS)."""
    import subprocess
    import sys

    pipe, data = bundled_copy
    pipe.store.lexical()  # the cache exists, as after any ingest-then-ask
    code = (
        "import sys; from rag.pipeline import Pipeline; from rag.settings import load_settings\n"
        "hits = Pipeline(load_settings()).search('group quantization sparsity', k=1)\n"
        "print(hits[0].paper.title[:4], hits[0].lexical is not None,"
        " 'bm25s' in sys.modules, 'scipy' in sys.modules, 'numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(__import__("os").environ, ABSTRACTA_DATA_DIR=str(data)),
                         timeout=120)
    assert out.stdout.split() == ["GQSA", "True", "False", "False", "False"], out.stderr[-2000:]


def test_a_cache_in_an_older_layout_is_rebuilt(bundled_copy, embedder):
    import json

    from rag.pipeline import Pipeline

    pipe, data = bundled_copy
    pipe.store.lexical()
    for manifest in (data / "lexical").glob("*/manifest.json"):
        info = json.loads(manifest.read_text())
        # What a cache of format 4 (one precomputed score matrix) had: no "format" 5.
        manifest.write_text(json.dumps({"generation": info["generation"], "chunks": 1,
                                        "format": "4.x"}))
    other = Pipeline(pipe.settings, embedder=embedder)
    hits = other.search("group quantization sparsity", k=1)
    assert hits[0].paper.title.startswith("GQSA") and hits[0].lexical


def test_a_paper_found_only_by_bm25_gets_its_best_chunk_cosine(bundled_pipeline):
    """Relevance needs a cosine for every hit; a lexical-only hit takes its best chunk's."""
    import numpy as np

    from rag.retrieve import paper_cosines

    store, emb = bundled_pipeline.store, bundled_pipeline.embedder
    paper = max(store.iter_papers(), key=lambda p: len(p.abstract))  # the most chunks
    pid = paper.paper_id
    q = emb.embed_query("quantization")
    vecs = store.chunk_vectors([pid])[pid]
    assert len(vecs) == sum(r.paper_id == pid for page in store.scan() for r in page)
    got = paper_cosines(store, q, [paper], bundled_pipeline.settings)[pid]
    assert got == pytest.approx(float(np.max(vecs @ q)))
    # A paper with more chunks than the by-id read guesses is read whole all the same.
    assert len(vecs) > 1
    np.testing.assert_allclose(store.chunk_vectors([pid], guess=1)[pid], vecs)


def test_a_one_chunk_abstract_is_stored_once_and_read_back_whole(bundled_copy, tmp_path):
    from rag.identity import paper_id

    pipe, _ = bundled_copy
    _add_paper(pipe, tmp_path)
    pid = paper_id("Quibblefrost Sketches for Streams")
    (first,) = [r for page in pipe.store.scan() for r in page if r.paper_id == pid]
    abstract = ABSTRACT.split(",")[0]  # _add_paper's CSV line is unquoted
    assert first.text == f"Quibblefrost Sketches for Streams\n{abstract}"
    assert first.paper is not None and first.paper.abstract == abstract
    assert pipe.store.get_papers([pid])[pid].abstract == abstract
    # The layout: chunk #0's metadata leaves the abstract out when its text is title +
    # abstract (the same kilobyte twice otherwise), and the record is read back whole.
    from rag.store.schema import chunk_metadata, metadata_for_paper, paper_from_meta

    paper = first.paper
    meta = chunk_metadata(pid, 0, metadata_for_paper(paper, "h", "k"), first.text)
    assert "abstract" not in meta and paper_from_meta(pid, meta) == paper
    longer = chunk_metadata(pid, 0, metadata_for_paper(paper, "h", "k"), "a first span")
    assert paper_from_meta(pid, longer) == paper


def test_filters_follow_new_papers_and_their_sources(bundled_copy, tmp_path):
    """The facets a filter is built from follow the index: a paper ingested from a new
    file, or listed again in another one, is found by a filter on that file at once."""
    from rag.pipeline import Pipeline
    from rag.retrieve import Filters
    from rag.text import terms

    pipe, _ = bundled_copy
    assert "new.csv" not in pipe.store.snapshot().facets.source_counts()
    _add_paper(pipe, tmp_path)
    assert pipe.store.snapshot().facets.source_counts()["new.csv"] == 1
    hits = pipe.search("quibblefrost", k=3, filters=Filters(sources=("NEW.csv",)))
    assert [h.paper.title for h in hits] == ["Quibblefrost Sketches for Streams"]
    # The same paper listed again in another file: only its listings change, so BM25
    # scores stay as they are, and the new file is a filter at once, here and in a new
    # process. The cache catches up with the one paper's chunks (its facets are counted
    # from the chunks it holds), it is not rebuilt.
    lex = pipe.store.lexical()
    again = write(tmp_path / "again.csv", (tmp_path / "new.csv").read_text())
    assert pipe.ingest([again]).updated == 1
    snap = pipe.store.snapshot()
    assert snap.facets.source_counts()["again.csv"] == 1
    assert snap.lexical.segments[0].name == lex.segments[0].name  # caught up
    q = terms("quibblefrost sketches for streams")
    assert snap.lexical.scores(q).tolist() == lex.scores(q).tolist()
    other = Pipeline(pipe.settings, embedder=pipe.embedder)
    for p in (pipe, other):
        hits = p.search("quibblefrost", k=3, filters=Filters(sources=("again",)))
        assert [h.paper.title for h in hits] == ["Quibblefrost Sketches for Streams"]


def test_stored_metadata_round_trips_through_records():
    """decode and encode are inverses on what ingest writes (chunk #0 and the others)."""
    from rag.store.schema import chunk_metadata, decode, encode, metadata_for_paper
    from rag.types import StoredPaper

    paper = StoredPaper("p1", "A Title", "First span. Second span.", ("--08-13", "2024-07-11"),
                        ("a.txt", "b.csv"), "Ann Author", "https://example.org/p1")
    record = metadata_for_paper(paper, "hash1", "a title")
    for n, text in ((0, "A Title\nFirst span."), (1, "A Title\nSecond span.")):
        meta = chunk_metadata("p1", n, record, text)
        decoded = decode(f"p1#{n}", meta)
        assert encode(decoded) == meta and decoded.complete
        assert decoded.dates == paper.dates and decoded.sources == paper.sources
        assert (decoded.paper == paper) == (n == 0)


def test_a_saved_cache_that_lacks_chunks_of_its_generation_is_not_used(bundled_copy, embedder):
    """Issue 26: after a write on a full disk, the BM25 cache claimed the current generation
    while holding 1,406 of 2,330 chunks, and the papers written meanwhile were not found by
    their titles. A cache whose chunk count is not the collection's is rebuilt on open."""
    from rag.pipeline import Pipeline

    pipe, _ = bundled_copy
    before = pipe.store.lexical()
    gen = pipe.store.generation()
    vec = embedder.embed_documents(["Quibblefrost Sketches for Streams\nWe sketch streams."])
    # Written under the same generation, as chunks that reached Chroma after the cache
    # of that generation was saved.
    pipe.store.index.collection.upsert(
        ids=["x:quibble#0"], embeddings=vec,
        metadatas=[{"paper_id": "x:quibble", "n": 0, "text": "Quibblefrost Sketches for "
                    "Streams\nWe sketch streams.", "title": "Quibblefrost Sketches for Streams",
                    "dates": "", "sources": "q.csv"}])
    assert pipe.store.generation() == gen
    fresh = Pipeline(pipe.settings, embedder=embedder).store.lexical()
    assert fresh is not None and len(fresh.chunk_ids) == len(before.chunk_ids) + 1
    assert "x:quibble#0" in set(map(str, fresh.chunk_ids))


def test_an_ingest_catches_the_lexical_cache_up_and_doctor_optimize_merges_it(
        bundled_copy, embedder, tmp_path):
    """Issue 23: an ingest adds a segment for the chunks it wrote and marks the rows of a
    paper it rewrote deleted, instead of rebuilding BM25 from the whole collection; the
    result scores as a fresh build does, in this process and in a new one. `ask doctor
    --optimize` merges the segments into one; the answers stay the same."""
    from rag_helpers import assert_lexical_is_a_fresh_build

    from rag.pipeline import Pipeline

    pipe, data = bundled_copy
    base = pipe.store.lexical()
    _add_paper(pipe, tmp_path)
    # The same file and title again with another abstract: the paper is rewritten.
    path = write(tmp_path / "new.csv", "title,abstract\nQuibblefrost Sketches for Streams,"
                 "Frobnicating counters for heavy hitters over sliding windows.\n")
    assert pipe.ingest([path]).updated == 1
    lex = pipe.store.lexical()
    assert [s.name for s in lex.segments[:1]] == [base.segments[0].name]
    assert len(lex.segments) == 3 and lex.deleted[1] is not None and lex.deleted[1].all()
    assert_lexical_is_a_fresh_build(pipe.store, tmp_path / "fresh")
    other = Pipeline(pipe.settings, embedder=embedder)  # a new process: loads it as is
    hits = other.search("frobnicating counters heavy hitters", k=3)
    assert hits[0].paper.title == "Quibblefrost Sketches for Streams"
    assert [s.name for s in other.store.lexical().segments] == [s.name for s in lex.segments]

    assert pipe.store.optimize_lexical()
    merged = pipe.store.lexical()
    assert len(merged.segments) == 1 and merged.deleted == [None]
    assert_lexical_is_a_fresh_build(pipe.store, tmp_path / "fresh2")
    assert other.search("frobnicating counters heavy hitters", k=3)[0].paper.title == (
        "Quibblefrost Sketches for Streams")
    assert not pipe.store.optimize_lexical()  # one segment already


def test_an_ingest_commits_the_segment_it_recorded_without_reading_chunks_back(
        wordllama, tmp_path, monkeypatch):
    """An embedded ingest counts the chunks it writes into a lexical segment as it goes
    (worker processes cut the words), so the BM25 index is current when it ends without
    reading the chunks back from Chroma: a first ingest, an added paper and a rewritten
    one. The result scores as a build from scratch does."""
    from rag_helpers import BUNDLED, assert_lexical_is_a_fresh_build

    from rag.ingest import embedding, pool
    from rag.pipeline import Pipeline
    from rag.settings import Settings
    from rag.store import cache

    def read_back(*args, **kwargs):
        raise AssertionError("the ingest read its chunks back")

    monkeypatch.setattr(embedding, "WORKER_MIN_PAPERS", 1)  # the worker processes' path
    monkeypatch.setattr(pool, "WORKER_PAPERS", 100)
    pipe = Pipeline(Settings(data_dir=tmp_path / "data", embedder="wordllama",
                             auto_ingest_bundled=False, _env_file=None), embedder=wordllama)
    with monkeypatch.context() as m:
        m.setattr(cache, "catch_up", read_back)
        m.setattr(cache, "build", read_back)
        assert pipe.ingest([BUNDLED]).added == BUNDLED_PAPERS
        assert len(pipe.store.lexical().segments) == 1
        _add_paper(pipe, tmp_path)
        path = write(tmp_path / "new.csv", "title,abstract\nQuibblefrost Sketches for Streams,"
                     "Frobnicating counters for heavy hitters over sliding windows.\n")
        assert pipe.ingest([path]).updated == 1
        lex = pipe.store.lexical()
    assert lex.n_live == pipe.store.count_chunks()
    assert_lexical_is_a_fresh_build(pipe.store, tmp_path / "fresh")
    hits = pipe.search("frobnicating counters heavy hitters", k=3)
    assert hits[0].paper.title == "Quibblefrost Sketches for Streams"


def test_a_run_that_writes_a_paper_twice_catches_up_the_usual_way(wordllama, tmp_path,
                                                                  monkeypatch):
    """Read 50 records at a time, the bundled corpus's repeated listings rewrite papers
    written earlier in the same run: the recorded segment would hold their chunks twice,
    so the cache reads the batch back instead, and is still exact."""
    from rag_helpers import BUNDLED, assert_lexical_is_a_fresh_build

    from rag.ingest import read
    from rag.pipeline import Pipeline
    from rag.settings import Settings
    from rag.store import cache

    monkeypatch.setattr(read, "MERGE_RECORDS", 50)
    built = []
    real_build = cache.build
    monkeypatch.setattr(cache, "build", lambda *a, **k: built.append(1) or real_build(*a, **k))
    pipe = Pipeline(Settings(data_dir=tmp_path / "data", embedder="wordllama",
                             auto_ingest_bundled=False, _env_file=None), embedder=wordllama)
    assert pipe.ingest([BUNDLED]).added == BUNDLED_PAPERS
    assert built  # the recorded segment was not used
    assert_lexical_is_a_fresh_build(pipe.store, tmp_path / "fresh")


def test_saving_the_vector_index_lets_the_old_copy_go_first_and_readers_wait(
        bundled_copy, tmp_path, monkeypatch):
    """The end of an ingest saves the vector index and opens it afresh: the process's old
    copy is let go before the new one loads (at 1M chunks each copy is ~1.4 GB), and a
    question asked meanwhile from another thread waits for the new one, never fails."""
    import gc
    import threading
    import weakref

    import rag.store.chroma as chroma

    pipe, _ = bundled_copy
    _add_paper(pipe, tmp_path)  # written: the index has something to save
    index = pipe.store.index
    chunks = pipe.store.count_chunks()
    old = weakref.ref(index.client)
    alive_at_open = []

    def opening(path, fresh=False):
        gc.collect()
        alive_at_open.append(old() is not None)
        return real_open(path, fresh)

    real_open = chroma.persistent_client
    monkeypatch.setattr(chroma, "persistent_client", opening)
    index.flush()
    assert alive_at_open == [False]  # the old copy was gone when the new one loaded
    failures, answers, done = [], [], threading.Event()

    def ask() -> None:
        while not done.is_set():
            try:
                answers.append(pipe.search("quibblefrost frobnication", k=1)[0].paper.title)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                failures.append(exc)

    reader = threading.Thread(target=ask)
    reader.start()
    try:
        for _ in range(3):
            index.flush()
    finally:
        done.set()
        reader.join(timeout=60)
    assert failures == []
    assert answers and set(answers) == {"Quibblefrost Sketches for Streams"}
    assert pipe.store.count_chunks() == chunks
