"""Feeds: sources that fetch (``ask sync``), each behind one small interface.

- ``source``: the interface (a Feed yields Pages of Papers since its cursor) and helpers;
- ``client``: the polite HTTP client (User-Agent, spacing, Retry-After, conditional GETs);
- ``hf``: the Hugging Face daily papers JSON API, one page per day;
- ``arxiv_rss``: arXiv's nightly RSS per category;
- ``oai_pmh``: arXiv's OAI-PMH ListRecords, for backfills (resumption tokens);
- ``xml``: hardened XML parsing (defusedxml over the standard library);
- ``cursor``: cursors, raw pages and the last-sync status under ``<data dir>/feeds/``;
- ``plan``: which feeds a sync runs (arguments or ``Settings.sync_sources``);
- ``sync``: fetch, ingest through :func:`rag.ingest.ingest_papers`, then move the cursor;
- ``new``: the papers the feeds listed, newest first (`ask new`, the Library tab).
"""
