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
