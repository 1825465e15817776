"""Paper identity: one id per paper, whatever the spelling of its title or id."""

from __future__ import annotations

import pytest

from rag.identity import normalize_arxiv_id, normalize_title, paper_id, title_key


@pytest.mark.parametrize("raw, want", [
    ("2406.01234", "2406.01234"),
    ("2406.01234v2", "2406.01234"),
    ("arXiv:2406.01234v12", "2406.01234"),
    (" 1706.03762 ", "1706.03762"),
    ("hep-th/9901001v1", "hep-th/9901001"),
    ("math.GT/0309136", "math.GT/0309136"),
    ("https://arxiv.org/abs/2406.01234v2", "2406.01234"),
    ("http://arxiv.org/pdf/2406.01234v1.pdf", "2406.01234"),
    ("", None),
    (None, None),
    ("paper-17", None),
    ("10.1145/3292500.3330701", None),
])
def test_arxiv_ids_are_normalized_and_versions_dropped(raw, want):
    assert normalize_arxiv_id(raw) == want


def test_arxiv_id_wins_over_title():
    assert paper_id("Anything at all", "2406.01234v3") == "2406.01234"
    assert paper_id("Another title", "arXiv:2406.01234") == "2406.01234"


@pytest.mark.parametrize("a, b", [
    ("M^3ViT: Mixture-of-Experts Vision Transformer",
     "M$^3$ViT: Mixture-of-Experts Vision Transformer"),
    ("M^{3}ViT: Mixture-of-Experts Vision Transformer",
     "M³ViT: Mixture of Experts Vision Transformer"),
    ("Café: Résumé Parsing", "Cafe: Resume parsing"),
    ("GPT-4o Is All You Need", "GPT 4o is all you need."),
    ("  Widget   Caching\n", "widget caching"),
    ("The \\textbf{Widget} Cache", "The Widget Cache"),
    ("\\textsc{Widget}: \\texttt{fast} caching", "Widget: fast caching"),
    ("Efficient \\mathbb{R}-Nets", "Efficient R-Nets"),
    ("“Quoted” – Titles", '"Quoted" - Titles'),
    ("ﬁne-tuning", "fine tuning"),
])
def test_title_spellings_of_one_paper_get_one_id(a, b):
    assert normalize_title(a) == normalize_title(b)
    assert paper_id(a) == paper_id(b)
    assert paper_id(a).startswith("t:")


@pytest.mark.parametrize("a, b", [
    ("Widget Caching", "Widget Hashing"),
    ("M3ViT", "M2ViT"),
    ("Learning to Rank", "Learning to Rank 2"),
])
def test_different_titles_get_different_ids(a, b):
    assert paper_id(a) != paper_id(b)


def test_bundled_corpus_has_358_papers_with_merged_listings(bundled_pipeline):
    """404 records in 4 files are 358 papers; a paper listed twice keeps both listings."""
    store = bundled_pipeline.store
    assert store.count_papers() == 358
    title = "Divide-Then-Aggregate: An Efficient Tool Learning Method via Parallel Tool Invocation"
    paper = store.get_papers([paper_id(title)])[paper_id(title)]
    assert paper.title == title
    assert paper.dates == ("--03-11", "--08-13")
    assert paper.sources == ("000_b88a07071653e565.txt", "003_30f78c25dce070b4.txt")
    multi = [p for p in store.iter_papers() if len(p.sources) > 1]
    assert len(multi) == 41


# --- records that share a title, records with ids of their own --------------------------

def _paper(title, abstract, source="a.csv", where="", **kw):
    from rag.types import Listing, Paper

    return Paper(title, abstract, (Listing("", source),), where=where or f"{source}:1", **kw)


def test_same_title_and_different_abstracts_are_different_papers():
    from rag.ingest import IngestReport, merge

    report = IngestReport()
    merged = merge([_paper("Summary", "Cats purr when content.", where="a.csv:2"),
                     _paper("Summary", "Dogs bark at strangers.", where="a.csv:3"),
                     _paper("Summary", "cats  PURR when content", "b.txt", "b.txt:9")], {}, report)
    assert len(merged) == 2
    plain = paper_id("Summary")
    assert plain in merged and merged[plain].sources == ("a.csv", "b.txt")
    other = next(p for p in merged.values() if p.paper_id != plain)
    assert other.paper_id.startswith(plain + "-") and other.abstract == "Dogs bark at strangers."
    assert report.merges == ["b.txt:9 into a.csv:2: Summary"]
    assert "1 record merged as the same paper" in report.summary()


def test_an_id_that_is_not_an_arxiv_id_becomes_the_paper_id():
    from rag.identity import record_id
    from rag.ingest import merge

    assert record_id("csv", "  W27  ") == "csv:W27" and record_id("jsonl", 17) == "jsonl:17"
    assert record_id("csv", "") is None and record_id("jsonl", 1.5) is None
    assert paper_id("Editorial", None, "csv:17") == "csv:17"
    assert paper_id("Editorial", "2406.01234", "csv:17") == "2406.01234"
    merged = merge([_paper("Editorial", "Same words.", record_id="csv:17"),
                     _paper("Editorial", "Same words.", record_id="csv:18")], {})
    assert sorted(merged) == ["csv:17", "csv:18"]


def test_a_listing_and_an_arxiv_record_of_one_paper_meet_in_either_order():
    from rag.ingest import merge

    for order in (1, -1):
        records = [_paper("GPipe: Pipelines", "We pipe.", "aug13.txt"),
                   _paper("GPipe: Pipelines", "We\n pipe.", "snap.jsonl", arxiv_id="1811.06965")]
        merged = merge(records[::order], {})
        assert list(merged) == ["1811.06965"]
        assert merged["1811.06965"].sources == ("aug13.txt", "snap.jsonl")


def test_an_indexed_title_keeps_its_id_and_an_edit_from_its_file_replaces_it():
    from rag.ingest import merge
    from rag.types import StoredPaper

    pid = paper_id("Summary")
    known = {title_key("Summary"): [StoredPaper(pid, "Summary", "Old words.", (), ("a.csv",))]}
    # The same file brings a new abstract: an edit of the indexed paper.
    assert list(merge([_paper("Summary", "New words.", "a.csv")], known)) == [pid]
    # Another file brings another abstract under that title: another paper.
    other = merge([_paper("Summary", "Unrelated words.", "b.csv")], known)
    assert list(other) != [pid] and list(other)[0].startswith(pid + "-")
    # An arXiv record of the indexed paper (same abstract) keeps the indexed id.
    assert list(merge([_paper("Summary", "old  WORDS", "s.jsonl", arxiv_id="2401.00001")],
                       known)) == [pid]


def test_ingest_keeps_every_paper_and_caps_a_huge_abstract(tmp_path, wordllama):
    from rag_helpers import write

    from rag.pipeline import Pipeline
    from rag.settings import Settings

    rows = ["id,title,abstract",
            "W1,Summary,We measure how cats purr when they are content.",
            "W2,Summary,We measure how dogs bark at strangers in parks.",
            ",Reply,A reply to the comment on widget caching.",
            ",Reply,A reply to the comment on widget caching.",
            "W3,Giant Widget Study," + "Widgets are studied at length. " * 4000]
    path = write(tmp_path / "in.csv", "\n".join(rows) + "\n")
    pipe = Pipeline(Settings(data_dir=tmp_path / "data", embedder="wordllama",
                             max_chunks_per_paper=8, auto_ingest_bundled=False,
                             _env_file=None), embedder=wordllama)
    report = pipe.ingest([path])
    assert report.added == 4 and pipe.store.count_papers() == 4
    ids = {p.paper_id for p in pipe.store.iter_papers()}
    assert {"csv:W1", "csv:W2", "csv:W3", paper_id("Reply")} == ids
    summary = report.summary()
    assert "1 record merged as the same paper as an earlier record: in.csv:5 into in.csv:4: " \
           "Reply" in summary
    assert "1 paper cut to the first 8 chunks: Giant Widget Study" in summary
    chunks = [c for page in pipe.store.scan() for c in page if c.paper_id == "csv:W3"]
    assert len(chunks) == 8
    hits = pipe.search("how do dogs bark at strangers", k=2)
    assert hits[0].paper.paper_id == "csv:W2" and hits[0].paper.link.startswith("https://arxiv.org/search")
