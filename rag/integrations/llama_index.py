"""Abstracta's paper-level hybrid retrieval as a llama-index retriever.

``AbstractaRetriever`` answers a llama-index query with Abstracta's own search
(MiniLM or wordllama dense + BM25, fused, grouped into papers): one
``NodeWithScore`` per paper, never per chunk, so a synthesizer sees each abstract
once. Use it anywhere llama-index takes a retriever::

    from llama_index.core.query_engine import RetrieverQueryEngine
    from rag.integrations.llama_index import AbstractaRetriever

    engine = RetrieverQueryEngine.from_args(AbstractaRetriever(), llm=my_llm)
    print(engine.query("Which paper combines group quantization with sparsity?"))

Nothing global is changed: llama-index's ``Settings`` are neither read nor set
here (pass your ``llm`` to ``from_args``, or ``RetrieverQueryEngine.from_args``
falls back to llama-index's own default, OpenAI).

Each node:
- ``text``: the title, a blank line, the whole abstract;
- ``node_id``: the paper id (arXiv id, or ``t:<hash>`` of the normalized title);
- ``metadata``: ``rank``, ``title``, ``paper_id``, ``date`` (earliest listing), ``dates``,
  ``url``, ``source`` (first file), ``sources``, ``relevance`` (0..1; under
  ``Settings.abstain_threshold`` the paper probably does not answer the question);
  only ``date`` is shown to the LLM and nothing but the text is embedded;
- ``score``: Abstracta's fused score (reciprocal-rank fusion of the dense and BM25
  rankings, higher is better; comparable within one query only).

The nodes come in Abstracta's order (``rank`` 1, 2, ...), which re-ranks the top of
the fused list by title matches and the fitted paper relevance, so the fused score
need not descend: a postprocessor that re-sorts by score undoes that re-rank.
"""

from __future__ import annotations

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.pipeline import Pipeline
from rag.retrieve import Filters
from rag.settings import Settings, load_settings
from rag.types import Hit

_HIDDEN_FROM_LLM = ["rank", "title", "paper_id", "dates", "url", "source", "sources",
                    "relevance"]
_METADATA_KEYS = ["date", *_HIDDEN_FROM_LLM]


class AbstractaRetriever(BaseRetriever):
    """A llama-index retriever over an Abstracta index: one node per paper.

    ``pipeline``: an existing ``rag.Pipeline`` (shares its loaded embedder and index);
    else one is built from ``settings`` (default: ``rag.load_settings()``, i.e. the
    ``ABSTRACTA_*`` environment and ``.env``). ``k``: papers per query (default
    ``settings.top_k``); ``filters``: a ``rag.Filters`` date/source restriction.
    An empty index gets the bundled sample corpus on the first query, as ``ask`` does,
    unless ``auto_ingest_bundled`` is off.
    """

    def __init__(self, pipeline: Pipeline | None = None, *, settings: Settings | None = None,
                 k: int | None = None, filters: Filters | None = None,
                 callback_manager: CallbackManager | None = None, verbose: bool = False):
        if pipeline is not None and settings is not None:
            raise ValueError("Pass a pipeline or settings, not both.")
        self._pipeline = pipeline or Pipeline(settings or load_settings())
        self._k = k
        self._filters = filters
        self._corpus_checked = False
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if not self._corpus_checked:
            self._pipeline.ensure_corpus()
            self._corpus_checked = True
        hits = self._pipeline.search(query_bundle.query_str, self._k, self._filters)
        return [hit_to_node(hit) for hit in hits]


def hit_to_node(hit: Hit) -> NodeWithScore:
    """One retrieved paper as a llama-index node with its fused score."""
    paper = hit.paper
    node = TextNode(
        id_=paper.paper_id,
        text=f"{paper.title}\n\n{paper.abstract}",
        metadata={
            "date": paper.date, "rank": hit.rank, "title": paper.title,
            "paper_id": paper.paper_id,
            "dates": list(paper.dates), "url": paper.link,
            "source": paper.sources[0] if paper.sources else "", "sources": list(paper.sources),
            "relevance": hit.relevance,
        },
        excluded_llm_metadata_keys=list(_HIDDEN_FROM_LLM),
        excluded_embed_metadata_keys=list(_METADATA_KEYS),
    )
    return NodeWithScore(node=node, score=hit.score)
