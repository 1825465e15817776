"""Abstracta inside other frameworks (each module imports its framework on import:
``import rag`` never loads them).

- ``rag.integrations.llama_index``: ``AbstractaRetriever``, a llama-index ``BaseRetriever``.
"""
