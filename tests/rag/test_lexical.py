"""The BM25 index as segments: several ingests (with replaced and deleted chunks) and
merges score exactly as one index built from scratch over the same live chunks; a
segment is the same whatever the build budget; a merge killed at any point leaves a
readable, correct index."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from rag_helpers import BUNDLED

from rag import lexical, segments
from rag.lexical import K1, B, idf
from rag.store.cache import apply, changes, optimize
from rag.text import sentences, stem, terms, words

FIELDS = ("paper_ids", "texts", "batch", "record", "dates", "sources")


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


def fresh(batch_chunks, batch):
    return {"paper_ids": [c[1] for c in batch_chunks], "texts": [c[2] for c in batch_chunks],
            "batch": [batch] * len(batch_chunks),
            "record": [c[0].endswith("#0") for c in batch_chunks],
            "dates": ["--08-13"] * len(batch_chunks),
            "sources": [f"b{batch}.csv"] * len(batch_chunks)}


def from_scratch(live, folder, budget=lexical.BUILD_BUDGET):
    """One segment over ``live`` (chunk id, paper id, text), in that order."""
    builder = segments.Builder(budget=budget, workdir=folder.parent)
    f = fresh(live, 1)
    builder.add([c[0] for c in live], *(f[k] for k in FIELDS))
    builder.write(folder / "seg-scratch")
    segments.write_manifest(folder, {"generation": "g", "segments": [
        {"name": "seg-scratch", "deleted": None}]})
    return lexical.load(folder, "g")


def ingest(folder, batch_chunks, batch):
    """What the cache does to catch up with one ingest batch (rag.store.cache)."""
    base = lexical.load(folder)
    ids, f = [c[0] for c in batch_chunks], fresh(batch_chunks, batch)
    delete, new = changes(base, ids, f, batch)
    apply(base, ids, f, delete, new, {"generation": f"g{batch}", "low": batch + 1})
    return lexical.load(folder, f"g{batch}")


def queries(chunks, n=150, seed=7):
    """One-word, stop-word-heavy, repeated-term and long questions from the corpus."""
    rng = random.Random(seed)
    vocab = sorted({w for _, _, t in chunks for w in words(t)})
    out = ["the of and", "sparsity sparsity quantization", "zzzunknownword model"]
    for i in range(n):
        size = [1, 2, 3, 5, 8, 20][i % 6]
        out.append(" ".join(rng.choice(vocab) for _ in range(size)))
    out += [rng.choice(chunks)[2] for _ in range(20)]  # whole sentences: many terms
    return out


def assert_same_index(lex, reference, questions):
    assert list(lex.chunk_ids) == list(reference.chunk_ids)
    assert list(lex.paper_ids) == list(reference.paper_ids)
    assert lex.n_live == reference.n_live and lex.avgdl == pytest.approx(reference.avgdl)
    for q in questions:
        qt = terms(q)
        rows, scores = lex.top(qt, 100)
        ref_rows, ref_scores = reference.top(qt, 100)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-6, atol=1e-9)
        # Rows equal wherever the scores are not tied across the cut-off.
        np.testing.assert_array_equal(rows, ref_rows)
        for t in set(qt):
            assert lex.doc_freq(t) == reference.doc_freq(t), t
            assert lex.idf(t) == pytest.approx(reference.idf(t), rel=1e-12)


def test_segments_with_replacements_and_deletions_score_as_one_index(chunks, tmp_path):
    rng = random.Random(3)
    papers = sorted({c[1] for c in chunks})
    by_paper = {p: [c for c in chunks if c[1] == p] for p in papers}
    order = papers[:]
    rng.shuffle(order)
    parts = [order[i::4] for i in range(4)]  # four ingests of new papers
    folder = tmp_path / "index"
    first = [c for p in parts[0] for c in by_paper[p]]
    from_scratch(first, folder)
    live = {c[0]: c for c in first}
    for batch, part in enumerate(parts[1:], start=2):
        # New papers, and some earlier ones written again with other text (a longer or
        # shorter abstract: more or fewer chunks), as a re-ingest replaces them.
        redo = rng.sample(sorted({c[1] for c in live.values()}), 6)
        written = [c for p in part for c in by_paper[p]]
        for p in redo:
            old = [c for c in live.values() if c[1] == p]
            keep = old[:-1] if len(old) > 1 and batch % 2 else old + [
                (f"{p}#{len(old)}", p, f"an added sentence about {batch} sparse experts")]
            written += [(cid, pid, f"{text} revised {batch}") for cid, pid, text in keep]
            for c in old:
                del live[c[0]]
        lex = ingest(folder, written, batch)
        for c in written:
            live[c[0]] = c
        expected = [c for c in live.values()]
        reference = from_scratch(sorted(expected, key=order_of(lex)), tmp_path / f"ref{batch}")
        assert_same_index(lex, reference, queries(chunks, n=40, seed=batch))
    assert len(lex.segments) == 4 and any(d is not None for d in lex.deleted)
    # A merge of everything: the same index again, in one segment with nothing deleted.
    assert optimize(folder, "g4", everything=True)
    merged = lexical.load(folder, "g4")
    assert len(merged.segments) == 1 and merged.deleted == [None]
    assert_same_index(merged, reference, queries(chunks))
    # Only what the manifest lists is left (the merged segments are removed).
    assert {p.name for p in folder.iterdir()} == {"manifest.json", merged.segments[0].name}


def order_of(lex):
    position = {str(c): i for i, c in enumerate(lex.chunk_ids)}
    return lambda c: position[c[0]]


def test_a_segment_is_the_same_whatever_the_budget(chunks, tmp_path):
    """Many small spills merged by term range give exactly the one-shot arrays."""
    small = segments.Builder(budget=20_000, workdir=tmp_path / "work")
    whole = segments.Builder(budget=2**40, workdir=tmp_path / "work")
    for builder in (small, whole):
        for s in range(0, len(chunks), 25):
            part = chunks[s:s + 25]
            f = fresh(part, 1)
            builder.add([c[0] for c in part], *(f[k] for k in FIELDS))
    assert len(small.spills) > 50 and not whole.spills
    small.write(tmp_path / "a")
    one = whole.write(None)  # in memory
    a = lexical.Segment.open(tmp_path / "a")
    for name in lexical.SEGMENT_ARRAYS:
        np.testing.assert_array_equal(np.asarray(a.arrays[name]), one.arrays[name], name)
    assert list((tmp_path / "work").iterdir()) == []  # the spills are gone


def test_scores_are_lucene_bm25(chunks, tmp_path):
    """The scores against a direct computation of the formula over the same terms."""
    lex = from_scratch(chunks, tmp_path / "i")
    tokens = [terms(t) for _, _, t in chunks]
    lengths = np.array([len(t) for t in tokens])
    avgdl = lengths.mean()
    for q in ["sparsity", "group quantization sparsity", "diffusion diffusion models"]:
        expected = np.zeros(len(chunks))
        for t in terms(q):
            tf = np.array([toks.count(t) for toks in tokens], dtype=float)
            df = np.count_nonzero(tf)
            if df:
                expected += idf(len(chunks), df) * tf / (tf + K1 * (1 - B + B * lengths / avgdl))
        np.testing.assert_allclose(lex.scores(terms(q)), expected, rtol=1e-6)
    assert lex.scores(terms("sparsity"))[-1] > 0 and lex.scores(terms("the of"))[-2] == 0


def test_chunks_without_terms_and_an_empty_index(tmp_path):
    builder = segments.Builder(budget=1, workdir=tmp_path)  # every add is a spill
    builder.add(["a#0", "a#1"], ["a", "a"], ["the of", "and"])
    builder.add(["b#0"], ["b"], ["quantization of quantization"])
    builder.add(["c#0"], ["c"], ["it is"])
    seg = builder.write(None)
    lex = lexical.Lexical(None, {"generation": "g"}, [seg], [None])
    assert list(lex.chunk_ids) == ["a#0", "a#1", "b#0", "c#0"]
    rows, scores = lex.top(terms("quantization"), 10)
    assert rows.tolist() == [2] and scores[0] > 0
    assert lex.top(terms("zzz"), 10)[0].tolist() == []
    empty = segments.Builder(workdir=tmp_path).write(None)
    assert lexical.Lexical(None, {}, [empty], [None]).n_live == 0


def test_allowed_rows_and_repeated_terms(chunks, tmp_path):
    lex = from_scratch(chunks, tmp_path / "i")
    q = terms("sparsity sparsity quantization")
    full = lex.scores(q)
    rows, scores = lex.top(q, 50)
    np.testing.assert_allclose(scores, full[rows], rtol=1e-6)
    assert (full[rows] > 0).all() and scores[0] == pytest.approx(full.max(), rel=1e-6)
    # Repeated terms count again: twice the weight of "sparsity" alone.
    np.testing.assert_allclose(lex.scores(terms("sparsity sparsity")),
                               2 * lex.scores(terms("sparsity")))
    mask = np.zeros(lex.n_live, dtype=bool)
    mask[rows[1::2]] = True
    some, _ = lex.top(q, 50, mask)
    assert set(some.tolist()) == set(rows[1::2].tolist())


def test_the_tiered_policy_merges_segments_of_similar_size():
    assert segments.plan_merge([50_000] + [900] * 7) == []
    assert segments.plan_merge([50_000] + [900] * 8) == list(range(1, 9))
    assert segments.plan_merge([9_000] * 8 + [100]) == list(range(8))
    assert segments.plan_merge([100_000, 9_000, 900, 9_000]) == []


def test_the_build_holds_about_its_budget_not_the_corpus(chunks, tmp_path):
    """Peak memory (numpy and Python allocations, traced) follows the budget: a corpus
    ten times the budget builds in about the budget."""
    import gc
    import tracemalloc

    many = [(f"{c[0]}-{k}", c[1], c[2]) for k in range(5) for c in chunks]

    def peak(budget):
        gc.collect()  # earlier tests' garbage is not this build's
        tracemalloc.start()
        try:
            builder = segments.Builder(budget=budget, workdir=tmp_path)
            for s in range(0, len(many), 200):
                part = many[s:s + 200]
                builder.add([c[0] for c in part], [c[1] for c in part], [c[2] for c in part])
            builder.write(tmp_path / f"i{budget}")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    for _, _, text in many:  # warm the process-wide stem caches (see rag.text)
        for word in words(text):
            stem(word)
    whole, bounded = peak(2**40), peak(1_000_000)
    assert whole > 8 * 1_000_000  # the corpus really is many budgets big
    assert bounded < whole / 3, (bounded, whole)


KILL = """
import os, signal, sys
from pathlib import Path
from rag import segments
from rag.store import cache

point = sys.argv[2]
real_write, real_manifest, real_gc = segments.write_postings, segments.write_manifest, \\
    segments.collect_garbage

def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "postings":      # half-way through writing the merged segment
    def write_postings(sink, sources, per_term, budget):
        sink.append("rows", per_term[:0].astype("int32"), "int32")
        die()
    segments.write_postings = write_postings
elif point == "manifest":    # the merged segment written, the manifest not yet swapped
    segments.write_manifest = die
elif point == "garbage":     # the manifest swapped, the old segments not yet removed
    segments.collect_garbage = die
cache.optimize(Path(sys.argv[1]), "g4", everything=True)
print("merged")
"""


@pytest.mark.parametrize("point", ["postings", "manifest", "garbage"])
def test_a_merge_killed_at_any_point_leaves_a_readable_correct_index(chunks, tmp_path, point):
    folder = tmp_path / "index"
    papers = sorted({c[1] for c in chunks})
    parts = [set(papers[i::4]) for i in range(4)]
    from_scratch([c for c in chunks if c[1] in parts[0]], folder)
    for batch in (2, 3, 4):
        lex = ingest(folder, [c for c in chunks if c[1] in parts[batch - 1]], batch)
    reader = lexical.load(folder, "g4")  # a reader that holds the old segments
    before = {q: reader.top(terms(q), 20) for q in queries(chunks, n=30)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILL), str(folder), point],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9 and "merged" not in proc.stdout, proc.stderr[-2000:]
    after = lexical.load(folder, "g4")
    assert after is not None
    assert len(after.segments) == (1 if point == "garbage" else len(lex.segments))
    for q, (rows, scores) in before.items():
        for snap in (reader, after):  # the old reader's maps too (files may be unlinked)
            got_rows, got_scores = snap.top(terms(q), 20)
            np.testing.assert_array_equal(got_rows, rows)
            np.testing.assert_allclose(got_scores, scores, rtol=1e-9)
    # The next merge (or catch-up) finishes the job and removes what no manifest lists.
    optimize(folder, "g4", everything=True)
    final = lexical.load(folder, "g4")
    assert {p.name for p in folder.iterdir()} == {"manifest.json", final.segments[0].name}


def test_the_compiled_scan_answers_as_the_numpy_path(chunks, tmp_path, monkeypatch):
    """A large index is scored by rag.topk_scan (here: any size): over segments with
    replaced and deleted chunks, with a filter, its answer is the numpy path's."""
    from rag import topk_scan

    topk_scan.load()
    assert topk_scan.ready()
    rng = random.Random(5)
    folder = tmp_path / "index"
    from_scratch(chunks[: len(chunks) // 2], folder)
    again = [(cid, pid, f"{text} rewritten sparse") for cid, pid, text in
             rng.sample(chunks[: len(chunks) // 2], 40)]
    lex = ingest(folder, chunks[len(chunks) // 2:] + again, 2)
    assert len(lex.segments) == 2 and lex.deleted[0] is not None
    mask = np.array([rng.random() < 0.3 for _ in range(lex.n_live)])
    for q in queries(chunks, n=60, seed=11):
        for allowed in (None, mask):
            monkeypatch.setattr(lexical, "SCAN_ROWS", 10**12)
            want = lex.top(terms(q), 100, allowed)
            monkeypatch.setattr(lexical, "SCAN_ROWS", 0)
            got = lex.top(terms(q), 100, allowed)
            assert got[0].tolist() == want[0].tolist(), q
            assert got[1].tolist() == want[1].tolist(), q


def test_a_process_loads_the_scan_only_after_many_questions(chunks, tmp_path):
    """A one-question process never imports numba; one that keeps asking loads the scan
    in the background and then answers with it, the same answers (a fresh process: the
    loaded kernels are process-wide)."""
    from_scratch(chunks, tmp_path / "index")
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from rag import lexical, topk_scan
        from rag.text import terms
        lexical.SCAN_ROWS, lexical.SCAN_AFTER_S = 0, 0.02
        lex = lexical.load(Path({str(tmp_path / "index")!r}), "g")
        first = lex.top(terms("sparsity quantization"), 10)
        print("numba" in sys.modules, topk_scan.ready())
        for _ in range(5000):
            if topk_scan.ready():
                break
            lex.top(terms("large language models reasoning benchmark"), 100)
            time.sleep(0.01)
        again = lex.top(terms("sparsity quantization"), 10)
        print(topk_scan.ready(), first[0].tolist() == again[0].tolist(),
              first[1].tolist() == again[1].tolist())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert out.stdout.split() == ["False", "False", "True", "True", "True"], out.stderr[-2000:]
