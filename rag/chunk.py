"""Chunking: a paper's abstract -> chunks of at most ``chunk_size`` model tokens.

One stage of the ingest (:mod:`rag.ingest`), also used by ``ask doctor --repair`` to
rewrite a damaged paper exactly as the ingest would have written it.
"""

from __future__ import annotations

from collections.abc import Callable

from rag.embed import PieceMemo, load_tokenizer
from rag.settings import Settings
from rag.text import sentences
from rag.types import Chunk, StoredPaper


def make_chunker(settings: Settings) -> Callable[[StoredPaper], list[Chunk]]:
    """Split abstracts with llama-index's SentenceSplitter, counting model tokens.

    Chunk overlap, worked example with chunk_tokens=110, overlap=24: a 318-token
    abstract becomes spans of at most 110 tokens cut at sentence ends, and each
    span starts with up to 24 tokens (whole sentences where possible) that end the
    previous one, so a fact straddling a cut is whole in at least one chunk. The
    title goes in front of every span (``chunk_title='every'``): a chunk that never
    names its subject would embed poorly; ``first`` and ``short`` keep it whole in
    chunk #0 only (see :func:`_title_in_later_chunks`).

    At most ``max_chunks_per_paper`` chunks per paper, from the start of the abstract:
    one 2 MB "abstract" would otherwise be thousands of chunks and fill the dense top
    candidates of every related question. Only a prefix that can hold that many chunks
    is split (``cap * chunk_size * 10`` characters: a token is rarely 10 characters),
    so a huge abstract costs no more than a long one.
    """
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(
        chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
        tokenizer=TokenCounter(load_tokenizer(None)),
        # Abstracts are single paragraphs of well-formed sentences: a regex split gives
        # the same chunks as the default NLTK punkt splitter at a third of the cost.
        chunking_tokenizer_fn=_sentences_for_splitter,
    )

    cap = settings.max_chunks_per_paper
    prefix = cap * settings.chunk_size * 10

    def chunk(paper: StoredPaper) -> list[Chunk]:
        spans = splitter.split_text(paper.abstract[:prefix]) or [paper.abstract[:prefix]]
        if len(paper.abstract) > prefix and len(spans) < cap:  # very long tokens: split all
            spans = splitter.split_text(paper.abstract)
        later = _title_in_later_chunks(paper.title, settings.chunk_title)
        return [Chunk(f"{paper.paper_id}#{i}", paper.paper_id, i,
                      f"{paper.title if i == 0 else later}\n{span}" if i == 0 or later else span)
                for i, span in enumerate(spans[:cap])]

    def cut(paper: StoredPaper) -> bool:
        """Whether the abstract holds more than ``cap`` chunks (so some were left out)."""
        if len(paper.abstract) <= cap * (settings.chunk_size - settings.chunk_overlap):
            return False  # too short for that many chunks: no need to split it
        spans = splitter.split_text(paper.abstract[:prefix])
        if len(paper.abstract) > prefix and len(spans) < cap:
            spans = splitter.split_text(paper.abstract)
        return len(spans) > cap or (len(paper.abstract) > prefix and len(spans) == cap)

    chunk.cut = cut  # type: ignore[attr-defined]
    return chunk


class TokenCounter:
    """The MiniLM tokenizer's token count of a text, summed over its space-separated
    pieces, each piece's count remembered: the splitter's token counter.

    Why: counting was half of an ingest worker's time (wordllama, synthetic corpus:
    0.61 ms of encoding per abstract), and an abstract's words are mostly words the
    run has already seen.

    Why the sum is exact: the tokenizer's normalizer keeps a space a space, and its
    pre-tokenizer cuts there before WordPiece runs, so no token spans a space. Every
    other step (lower-casing, accent stripping, CJK spacing) works char by char, so a
    piece's tokens are the same alone as in the text. Worked example:
    "Sparse MoE-layers." -> "Sparse" (1: sparse) + "MoE-layers." (4: moe - layers .)
    = 5, what ``encode`` gives the whole text. The splitter only takes ``len()`` of
    the result, so a ``range`` of that length stands in for the token list.
    """

    def __init__(self, tokenizer, kept: int = 200_000):
        self._counts = PieceMemo(tokenizer, len, kept)

    def __call__(self, text: str) -> range:
        pieces = text.split(" ")
        return range(sum(map(self._counts.fill(pieces).__getitem__, pieces)))


def _title_in_later_chunks(title: str, mode: str) -> str:
    """What chunks #1.. carry of the title (``Settings.chunk_title``); chunk #0 has it all.

    'short' keeps a title's name without its description: "AWQ: Activation-aware Weight
    Quantization for On-Device LLM Compression" -> "AWQ"; a title with no short head
    before a colon keeps its first 6 words.
    """
    if mode == "every":
        return title
    if mode == "first":
        return ""
    head, sep, _ = title.partition(":")
    if sep and 0 < len(head.split()) <= 4:
        return head.strip()
    return " ".join(title.split()[:6])


def _sentences_for_splitter(text: str) -> list[str]:
    """The abstract's sentences (:func:`rag.text.sentences`, the one copy), each but the
    last with the space after it: the splitter joins pieces as they are, so a chunk
    reads "end. Next" and not "end.Next"."""
    parts = sentences(text)
    return [p + " " for p in parts[:-1]] + parts[-1:]
