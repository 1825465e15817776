"""Paper identity: one id per paper, whatever the spelling of its title or id."""

from __future__ import annotations

import pytest

from rag.identity import normalize_arxiv_id, normalize_title, paper_id


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
