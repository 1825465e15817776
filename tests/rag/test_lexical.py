"""The BM25 build in bounded memory: segments spilled to disk and merged give exactly
the arrays of a one-shot build, whatever the budget, on disk or in memory."""

from __future__ import annotations

import numpy as np
import pytest
from rag_helpers import BUNDLED

from rag import lexical
from rag.lexical import K1, B, Builder, idf
from rag.text import sentences, stem, terms, words


@pytest.fixture(scope="module")
def chunks():
    """The bundled corpus cut into sentence-sized chunks (chunk id, paper id, text), plus
    chunks with no term at all and with a term repeated."""
    from rag.sources import expand_paths, load_path

    out = []
    for n, paper in enumerate(p for f in expand_paths([BUNDLED]) for p in load_path(f).papers):
        pid = f"p{n}"
        for i, text in enumerate([paper.title, *sentences(paper.abstract)]):
            out.append((f"{pid}#{i}", pid, text))
    out += [("empty#0", "empty", "the of and"), ("loop#0", "loop", "sparsity " * 40)]
    return out


def build(chunks, page=500, **kwargs):
    builder = Builder(**kwargs)
    for s in range(0, len(chunks), page):
        part = chunks[s:s + page]
        builder.add([c[0] for c in part], [c[1] for c in part], [c[2] for c in part])
    return builder


def one_shot(chunks, vocab):
    """The BM25 matrix the way it was built before segments: every token in memory, one
    np.unique over all (word, chunk) keys. The reference the segmented build must equal."""
    tokens = [np.array([vocab[t] for t in terms(text)], dtype=np.int32) for _, _, text in chunks]
    n_docs = len(tokens)
    lengths = np.array([len(t) for t in tokens], dtype=np.int64)
    tok = np.concatenate(tokens)
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    keys, tf = np.unique(tok.astype(np.int64) * n_docs + doc, return_counts=True)
    col, row = keys // n_docs, keys % n_docs
    df = np.bincount(col, minlength=len(vocab))
    avgdl = max(float(lengths.mean()), 1e-9)
    norm = K1 * (1 - B + B * lengths[row] / avgdl)
    data = (idf(n_docs, df)[col] * tf / (tf + norm)).astype(np.float32)
    indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
    return data, row.astype(np.int32), indptr


def assert_same(lex, chunks, reference):
    data, rows, indptr = reference
    np.testing.assert_array_equal(lex.indptr, indptr)
    np.testing.assert_array_equal(lex.indices, rows)
    assert lex.data.dtype == np.float32 and lex.indices.dtype == np.int32
    np.testing.assert_array_equal(lex.data, data)  # bit for bit, not approximately
    assert list(lex.chunk_ids) == [c[0] for c in chunks]
    assert list(lex.paper_ids) == [c[1] for c in chunks]


def test_many_small_segments_give_exactly_the_one_shot_scores(chunks, tmp_path):
    builder = build(chunks, page=25, budget=20_000, workdir=tmp_path / "work")
    spilled = len(builder.segments)
    lex = builder.build("g1", tmp_path / "index")
    assert spilled > 50  # the budget really split the corpus (and the merge into ranges)
    assert_same(lex, chunks, one_shot(chunks, lex.vocab))
    assert isinstance(lex.data, np.memmap)  # mapped from the written folder
    assert lex.scores(terms("sparsity"))[-1] > 0 and lex.scores(terms("the of"))[-2] == 0
    again = lexical.load(tmp_path / "index", "g1")
    np.testing.assert_array_equal(again.data, lex.data)
    assert again.vocab == lex.vocab
    # The spilled segments are gone once the index is written.
    assert list((tmp_path / "work").iterdir()) == []


def test_one_segment_and_in_memory_builds_are_the_same_index(chunks, tmp_path):
    whole = build(chunks, budget=2**40, workdir=tmp_path)
    assert len(whole.segments) == 0  # everything still in the first, unflushed segment
    lex = whole.build("g1")  # no folder: in memory
    assert not isinstance(lex.data, np.memmap)
    assert_same(lex, chunks, one_shot(chunks, lex.vocab))
    small = build(chunks, budget=50_000, workdir=tmp_path).build("g1")
    assert_same(small, chunks, one_shot(chunks, small.vocab))
    assert small.vocab == lex.vocab


def test_an_unwritable_folder_still_gives_the_index_in_memory(chunks, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    builder = build(chunks[:300], budget=20_000, workdir=blocker / "spill")  # system temp
    lex = builder.build("g1", blocker / "index")
    assert not isinstance(lex.data, np.memmap)
    assert_same(lex, chunks[:300], one_shot(chunks[:300], lex.vocab))


def test_nothing_added_builds_nothing(tmp_path):
    assert Builder(workdir=tmp_path).build("g1", tmp_path / "index") is None
    assert not (tmp_path / "index").exists()


def test_segments_of_chunks_without_terms(tmp_path):
    """A segment may hold no posting at all (chunks of stop words only)."""
    builder = Builder(budget=1, workdir=tmp_path)  # every add is a segment
    builder.add(["a#0", "a#1"], ["a", "a"], ["the of", "and"])
    builder.add(["b#0"], ["b"], ["quantization of quantization"])
    builder.add(["c#0"], ["c"], ["it is"])
    lex = builder.build("g1", tmp_path / "index")
    assert list(lex.chunk_ids) == ["a#0", "a#1", "b#0", "c#0"]
    scores = lex.scores(terms("quantization"))
    assert scores[2] > 0 and np.count_nonzero(scores) == 1


def test_the_build_holds_about_its_budget_not_the_corpus(chunks, tmp_path):
    """Peak memory (numpy and Python allocations, traced) follows the budget: a corpus
    ten times the budget builds in about the budget."""
    import gc
    import tracemalloc

    many = [(f"{c[0]}-{k}", c[1], c[2]) for k in range(3) for c in chunks]

    def peak(budget):
        gc.collect()  # earlier tests' garbage is not this build's
        tracemalloc.start()
        try:
            build(many, page=200, budget=budget, workdir=tmp_path).build("g", tmp_path / "i")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # The stem caches (rag.text.stem, american) are process-wide and bounded: filled by
    # earlier tests, they would evict and re-allocate during either measurement. Warm
    # them with this corpus's words first, so both builds measure the index alone.
    for _, _, text in many:
        for word in words(text):
            stem(word)
    whole, bounded = peak(2**40), peak(1_000_000)  # ~11 MB and ~2.4 MB when written
    assert whole > 8 * 1_000_000  # the corpus really is many budgets big
    # The budget, plus what does not shrink with it: the vocabulary, one page of text.
    assert bounded < whole / 3, (bounded, whole)
