"""Ingest: files -> papers (deduplicated) -> chunks -> vectors -> the index.

Idempotent and resumable by construction:

1. Every record gets its paper id (:mod:`rag.identity`); a title already indexed
   under another id keeps that id, so one paper never lives under two ids.
2. Records with the same id are merged: every listing (date, source) is kept.
3. Each paper is compared with its stored record by a hash of title + abstract:
   same hash -> only new listings are merged into its metadata ("unchanged" when
   there are none); another hash or no record -> its chunks are (re)embedded.
4. Chunks are written under deterministic ids ``<paper_id>#<n>`` (old chunks of
   that paper deleted first), and chunk #0, which carries the paper record, last.
   A run killed anywhere leaves papers without a current record, and the next
   run redoes exactly those: same index as an uninterrupted run, no duplicates.

Embedding and Chroma writes overlap: while batch i is written, batch i+1 is
chunked and embedded (in a thread for small ingests, in worker processes for
large ones).

The modules, one job each (the flow of a run, in order):

- ``run``: the run itself (``ingest_paths``, ``ingest_papers``);
- ``bundled``: the bundled sample corpus (first use, resuming a stopped first run);
- ``session``: one writer per index (the write lock, held once per store);
- ``stop``: Ctrl-C and SIGTERM as :class:`rag.errors.Interrupted`;
- ``read``: files as a stream of records, in merge-ready batches;
- ``merge``: records grouped into one paper each (identity within a batch);
- ``seen``: what this run did with each paper, for the batches after;
- ``dedupe``: one batch against the index (embed, update listings, or leave);
- ``embedding``: chunking and embedding, here (a thread writes) or in ``pool``;
- ``pool``: the worker processes that chunk and embed for a large run;
- ``write``: the batched Chroma writes and the writer thread;
- ``report``: the run's summary and how far it got.
"""

from rag.chunk import make_chunker
from rag.identity import normalize_title
from rag.ingest.bundled import (
    ensure_bundled_corpus,
    needs_bundled_corpus,
    unfinished_bundled_corpus,
)
from rag.ingest.embedding import WORKER_MIN_PAPERS
from rag.ingest.merge import content_hash, merge
from rag.ingest.read import open_files, read_records
from rag.ingest.report import IngestReport, Progress
from rag.ingest.run import BUNDLED_CORPUS, ingest_papers, ingest_paths
from rag.ingest.session import OnWait, write_session

__all__ = ["IngestReport", "ingest_paths", "ingest_papers", "ensure_bundled_corpus",
           "needs_bundled_corpus", "unfinished_bundled_corpus", "write_session", "open_files",
           "read_records", "merge",
           "content_hash", "make_chunker", "normalize_title", "BUNDLED_CORPUS",
           "WORKER_MIN_PAPERS", "Progress", "OnWait"]
