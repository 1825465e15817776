"""Chunking: where the title goes (ABSTRACTA_CHUNK_TITLE), where chunks are cut, and the
chunk-size bound."""

from __future__ import annotations

import pytest

from rag.chunk import make_chunker
from rag.embed import load_tokenizer
from rag.settings import Settings
from rag.types import StoredPaper

TITLE = "GQSA: Group Quantization and Sparsity for Accelerating Large Language Model Inference"
ABSTRACT = " ".join(f"Sentence number {i} says that the method keeps accuracy on task {i}."
                    for i in range(40))


def _chunks(title: str = TITLE, **overrides) -> list[str]:
    settings = Settings(embedder="minilm", _env_file=None, **overrides)
    return [c.text for c in make_chunker(settings)(StoredPaper("p", title, ABSTRACT, (), ()))]


def test_default_puts_the_whole_title_in_front_of_every_chunk():
    chunks = _chunks()
    assert len(chunks) > 2
    assert all(c.startswith(TITLE + "\n") for c in chunks)


def test_title_first_keeps_the_title_in_chunk_zero_only():
    chunks = _chunks(chunk_title="first")
    assert chunks[0].startswith(TITLE + "\n")
    assert not any("GQSA" in c for c in chunks[1:])
    # Same spans as the default, minus the repeated titles.
    assert [c.split("\n", 1)[-1] for c in _chunks()] == [chunks[0].split("\n", 1)[1], *chunks[1:]]


@pytest.mark.parametrize(("title", "head"), [
    (TITLE, "GQSA"),
    ("Efficient training of giant neural networks using pipeline parallelism",
     "Efficient training of giant neural networks"),
])
def test_title_short_repeats_the_acronym_or_the_first_words(title, head):
    chunks = _chunks(title, chunk_title="short")
    assert chunks[0].startswith(title + "\n")
    assert all(c.startswith(head + "\n") for c in chunks[1:])


def test_chunks_stay_within_the_token_budget_with_overlap_zero():
    tok = load_tokenizer(None)
    for text in _chunks(chunk_title="first", chunk_overlap=0)[1:]:
        assert len(tok.encode(text, add_special_tokens=False)) <= 110


def test_chunks_are_cut_at_sentence_ends_not_after_abbreviations():
    """A cut after "vs." or "et al." would leave half a fact in each chunk; the cuts fall
    where rag.text.sentences ends a sentence, and sentences keep their space."""
    abstract = " ".join(f"Method {i} scores 8{i % 10}.5% vs. 80.1% as in Smith et al. on "
                        f"e.g. GPUs for task {i}." for i in range(40))
    settings = Settings(embedder="minilm", chunk_title="first", _env_file=None)
    chunks = [c.text for c in make_chunker(settings)(StoredPaper("p", "T", abstract, (), ()))]
    bodies = [chunks[0].split("\n", 1)[1], *chunks[1:]]
    assert len(bodies) > 2
    for body in bodies:
        assert body.startswith("Method ") and body.endswith("."), body
        assert "GPUs for" in body and ".Method" not in body


def test_unknown_title_mode_is_refused():
    from rag.errors import SettingsError
    from rag.settings import load_settings

    with pytest.raises(SettingsError):
        load_settings(chunk_title="sometimes")


def _bundled_abstracts() -> list[str]:
    from rag.ingest import BUNDLED_CORPUS
    from rag.sources import expand_paths, open_path

    return [p.abstract for path in expand_paths([BUNDLED_CORPUS]) for p in open_path(path)]


# Texts where a space-by-space count could go wrong: spaces of every kind, combining
# accents after a space, CJK, lower-casing that changes length, controls, bidi, a word
# over WordPiece's 100-character limit, and pieces that repeat.
ODD_TEXTS = [
    "", " ", "  a  b  ", "naïve café déjà-vu", "a \u0301b e\u0301", "深度学习 模型GPipe",
    "x\u00a0y\u2028z\x0bw\x85v\u3000u\tt\nq\r\ns", "İstanbul ΣΑΣ ß ﬁne",
    "evil\u202e txt\u200b zero\ufeff", "word " * 50, "x" * 150 + " short " + "y" * 99,
    "557M-parameter 1.5x 9×9 (ablation) [1]-[3] e.g., U.S.A.'s",
]


def test_the_remembered_token_count_is_the_tokenizers_own():
    """TokenCounter sums remembered counts over space-separated pieces: for every bundled
    abstract and every odd text, the count equals a fresh encode of the whole text (a
    count too low would let chunks grow past MiniLM's window)."""
    from rag.chunk import TokenCounter

    tok = load_tokenizer(None)
    counter = TokenCounter(tok, kept=500)  # small: the memo starts over many times
    texts = _bundled_abstracts() + ODD_TEXTS
    assert len(texts) > 300
    for text in texts + texts[::-1]:  # second pass: from the memo
        assert len(counter(text)) == len(tok.encode(text, add_special_tokens=False)), text


@pytest.mark.parametrize("embedder", ["minilm", "wordllama"])
def test_chunks_are_those_of_a_plain_token_count(embedder, monkeypatch):
    """The memo changes no chunk: the bundled corpus is cut as with one encode per count."""
    import rag.chunk

    settings = Settings(embedder=embedder, _env_file=None)
    papers = [StoredPaper(f"p{i}", "T", a, (), ())
              for i, a in enumerate(_bundled_abstracts() + ODD_TEXTS)]
    remembered = make_chunker(settings)
    monkeypatch.setattr(rag.chunk, "TokenCounter", lambda tok: (
        lambda text: tok.encode(text, add_special_tokens=False)))
    plain = make_chunker(settings)
    assert [remembered(p) for p in papers] == [plain(p) for p in papers]
