"""The peer: llama-index's default ingest and hybrid retrieval, on the same embedder.

Ingest is ``VectorStoreIndex.from_documents`` into a ``ChromaVectorStore`` with a
``SentenceSplitter`` built like :func:`rag.chunk.make_chunker` (chunk size,
overlap, MiniLM token counter) and a ``BaseEmbedding`` wrapping Abstracta's own
embedder. Retrieval is ``QueryFusionRetriever`` over the vector retriever and
``BM25Retriever``, ``mode="reciprocal_rerank"``, ``num_queries=1`` (no LLM).
Models are always passed explicitly; llama-index's global ``Settings`` is never used.

A cold query, like ``ask`` in a fresh process::

    python benchmarks/peer.py ask DIR "question"
"""

# Component-level: the peer reuses rag.embed.load_tokenizer and rag.identity.paper_id (internal).
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

COLLECTION = "peer"
EMBED_BATCH = 256  # llama-index's default is 10; larger favours the peer (fewer calls)


def wrap_embedder(embedder):
    """A llama-index BaseEmbedding that calls one of Abstracta's embedders."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class AbstractaEmbedding(BaseEmbedding):
        _inner: object = PrivateAttr()

        def __init__(self, inner, **kwargs):
            super().__init__(model_name=inner.name, embed_batch_size=EMBED_BATCH, **kwargs)
            self._inner = inner

        def _get_query_embedding(self, query: str):
            return self._inner.embed_query(query).tolist()

        async def _aget_query_embedding(self, query: str):
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str):
            return self._inner.embed_documents([text])[0].tolist()

        def _get_text_embeddings(self, texts):
            return self._inner.embed_documents(list(texts)).tolist()

    return AbstractaEmbedding(embedder)


def splitter(settings):
    """SentenceSplitter with Abstracta's chunk size, overlap and token counter."""
    from llama_index.core.node_parser import SentenceSplitter

    from rag.embed import load_tokenizer

    tok = load_tokenizer(None)
    return SentenceSplitter(
        chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
        tokenizer=lambda text: tok.encode(text, add_special_tokens=False).ids,
    )


def _client(folder: Path):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=str(folder / "chroma"),
                                     settings=ChromaSettings(anonymized_telemetry=False))


def load_documents(path: Path):
    """arXiv JSON Lines (or the bundled listing pages) -> llama-index Documents.

    The title is metadata that is embedded with every chunk (as Abstracta puts the
    title in front of every chunk); the id is kept but not embedded.
    """
    from llama_index.core import Document

    records = []
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                obj = json.loads(line)
                records.append((obj["id"], " ".join(obj["title"].split()),
                                " ".join(obj["abstract"].split())))
    else:  # the bundled corpus folder: parse it with Abstracta's loader
        from rag import expand_paths, load_path
        from rag.identity import paper_id

        seen = set()
        for f in expand_paths([path]):
            for p in load_path(f).papers:
                pid = paper_id(p.title, p.arxiv_id)
                if pid not in seen:
                    seen.add(pid)
                    records.append((pid, p.title, p.abstract))
    return [Document(text=abstract, id_=pid, metadata={"title": title, "paper_id": pid},
                     excluded_embed_metadata_keys=["paper_id"],
                     excluded_llm_metadata_keys=["paper_id"], metadata_template="{value}")
            for pid, title, abstract in records]


def ingest(path: Path, folder: Path, settings, embedder) -> dict:
    """llama-index's default ingest of ``path`` into a Chroma collection in ``folder``."""
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    docs = load_documents(path)
    collection = _client(folder).get_or_create_collection(
        COLLECTION, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
    VectorStoreIndex.from_documents(
        docs, storage_context=StorageContext.from_defaults(
            vector_store=ChromaVectorStore(chroma_collection=collection)),
        embed_model=wrap_embedder(embedder), transformations=[splitter(settings)],
        show_progress=False,
    )
    return {"papers": len(docs), "chunks": collection.count()}


def _nodes_from_chroma(collection):
    from llama_index.core.vector_stores.utils import metadata_dict_to_node

    nodes, offset = [], 0
    while True:
        res = collection.get(limit=5000, offset=offset, include=["documents", "metadatas"])
        for doc, meta in zip(res["documents"], res["metadatas"], strict=False):
            node = metadata_dict_to_node(meta)
            node.set_content(doc)
            nodes.append(node)
        if len(res["ids"]) < 5000:
            return nodes
        offset += 5000


def build_bm25(folder: Path, candidates: int) -> None:
    """Build the peer's BM25 index from the stored nodes and persist it in ``folder``."""
    from llama_index.retrievers.bm25 import BM25Retriever

    nodes = _nodes_from_chroma(_client(folder).get_collection(COLLECTION))
    BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=candidates).persist(
        str(folder / "bm25"))


def retriever(folder: Path, embedder, top_k: int, candidates: int):
    """The peer's hybrid retriever over the index in ``folder`` (BM25 from its cache)."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.retrievers.bm25 import BM25Retriever
    from llama_index.vector_stores.chroma import ChromaVectorStore

    store = ChromaVectorStore(chroma_collection=_client(folder).get_collection(COLLECTION))
    index = VectorStoreIndex.from_vector_store(store, embed_model=wrap_embedder(embedder))
    bm25 = BM25Retriever.from_persist_dir(str(folder / "bm25"))
    bm25.similarity_top_k = candidates
    return QueryFusionRetriever(
        [index.as_retriever(similarity_top_k=candidates), bm25], llm=MockLLM(),
        mode="reciprocal_rerank", num_queries=1, similarity_top_k=top_k, verbose=False,
    )


def main(argv: list[str]) -> None:
    """``ask FOLDER QUESTION``: one cold retrieval, titles printed."""
    if len(argv) != 3 or argv[0] != "ask":
        sys.exit("usage: python benchmarks/peer.py ask FOLDER QUESTION")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from rag import Pipeline, load_settings

    settings = load_settings()
    fusion = retriever(Path(argv[1]), Pipeline(settings).embedder, settings.top_k,
                       settings.candidates)
    for n, hit in enumerate(fusion.retrieve(argv[2]), start=1):
        print(f"{n}. {hit.node.metadata.get('title')}  ({hit.score:.4f})")


if __name__ == "__main__":
    main(sys.argv[1:])
