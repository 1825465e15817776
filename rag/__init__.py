"""Abstracta: questions over research-paper abstracts, answered with numbered citations.

The public API (what ``ui/``, ``eval/``, ``benchmarks/`` and other programs use)::

    import rag

    pipeline = rag.Pipeline(rag.load_settings(data_dir="./index"))
    pipeline.ensure_corpus()                      # first use: the bundled sample corpus
    answer = pipeline.answer("Which paper combines group quantization with sparsity?")
    print(answer.text, [c.title for c in answer.citations])
    print(rag.answer_to_dict(answer))             # the `ask --json` object
    for event in pipeline.stream("Which work reformulates attention as an RNN?"):
        if isinstance(event, rag.Token):  # also Waiting, Note, and last Done(answer)
            print(event.text, end="")

Importing ``rag`` is cheap: every name but the error classes is loaded on first
access (module ``__getattr__``), so ``ask --help`` never pays for pydantic, numpy,
Chroma or onnxruntime, and a program that only catches ``rag.AbstractaError``
loads nothing else.

Printing to a terminal is not the core's job: the faces (``ask``, ``ask ui``,
``ask eval``) share :mod:`rag.console` for that, and it is not exported here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from rag.errors import (
    AbstractaError,
    EmbedderError,
    EmbeddingMismatchError,
    LLMConfigError,
    LLMError,
    QuestionError,
    SettingsError,
    SourceError,
    StoreError,
    UnknownPaperError,
)

# name -> the module that defines it (imported on first access).
_LAZY = {
    "Pipeline": "rag.pipeline",
    "Settings": "rag.settings",
    "load_settings": "rag.settings",
    "Answer": "rag.types",
    "Hit": "rag.types",
    "Citation": "rag.types",
    "StoredPaper": "rag.types",
    "Filters": "rag.retrieve",
    # One index generation searched (eval/calibrate.py, benchmarks/beir.py, a UI session).
    "Searcher": "rag.retrieve",
    "Candidate": "rag.retrieve",
    "clean_question": "rag.retrieve",
    "Conversation": "rag.chat",
    "IngestReport": "rag.ingest",
    "answer_to_dict": "rag.serialize",
    "hit_to_dict": "rag.serialize",
    "paper_to_dict": "rag.serialize",
    "parse_filters": "rag.pipeline",
    # What ``Pipeline.stream`` yields (the CLI and the UI iterate them).
    "Event": "rag.llm.events",
    "Waiting": "rag.llm.events",
    "Token": "rag.llm.events",
    "Note": "rag.llm.events",
    "Done": "rag.llm.events",
    "normalize_title": "rag.identity",
    # Reading papers from files, as ``ask ingest`` does (benchmarks build corpora with it).
    "BUNDLED_CORPUS": "rag.ingest",
    "expand_paths": "rag.sources",
    "load_path": "rag.sources",
    # The one OpenAI(-compatible) client, and one prompt through it (``ask eval --judge``).
    "openai_client": "rag.openai_server",
    "ask_model": "rag.llm",
    # Showing answers and papers (the UI): untrusted text made inert, dates, citations.
    "display_safe": "rag.text",
    "display_date": "rag.dates",
    "split_citations": "rag.text",
    "citing_sentences": "rag.text",
    "supporting_sentences": "rag.text",
    # Answers and papers as files another program reads (the UI's downloads, `ask --format`).
    "answer_markdown": "rag.export",
    "hits_markdown": "rag.export",
    "papers_bibtex": "rag.export",
    "cited_papers": "rag.export",
}

__all__ = [
    *_LAZY,
    "AbstractaError", "SettingsError", "SourceError", "StoreError", "EmbeddingMismatchError",
    "EmbedderError", "LLMError", "LLMConfigError", "QuestionError",
    "UnknownPaperError",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; never runs
    from rag.chat import Conversation
    from rag.dates import display_date
    from rag.export import answer_markdown, cited_papers, hits_markdown, papers_bibtex
    from rag.identity import normalize_title
    from rag.ingest import BUNDLED_CORPUS, IngestReport
    from rag.llm import ask_model
    from rag.llm.events import Done, Event, Note, Token, Waiting
    from rag.openai_server import openai_client
    from rag.pipeline import Pipeline, parse_filters
    from rag.retrieve import Candidate, Filters, Searcher, clean_question
    from rag.serialize import answer_to_dict, hit_to_dict, paper_to_dict
    from rag.settings import Settings, load_settings
    from rag.sources import expand_paths, load_path
    from rag.text import citing_sentences, display_safe, split_citations, supporting_sentences
    from rag.types import Answer, Citation, Hit, StoredPaper
