"""Where ingest time goes in chunking: rag.chunk.make_chunker vs a batched sketch.

A measurement aid for the ingest profile, not used by Abstracta. The sketch keeps
the chunking rule (sentence-aligned spans of <= chunk_tokens MiniLM tokens, up to
chunk_overlap tokens of whole trailing sentences carried over, title in front)
but splits sentences with a regex instead of nltk punkt, and counts the tokens
of all sentences of a batch of papers with one ``encode_batch`` call instead of
one ``encode`` per candidate split.

    python benchmarks/chunk_probe.py CORPUS.jsonl [N]
"""

# Component-level: times the chunker itself (rag.chunk.make_chunker, rag.embed.load_tokenizer).
from __future__ import annotations

import json
import re
import sys
import time

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def batched_chunker(settings):
    """Chunk a list of StoredPaper at once; returns a list of span lists."""
    from rag.embed import load_tokenizer

    tok = load_tokenizer(None)
    size, overlap = settings.chunk_size, settings.chunk_overlap

    def chunk_all(papers):
        sents = [_SENT.split(p.abstract) for p in papers]
        flat = [s for ss in sents for s in ss]
        counts = [len(e.ids) for e in tok.encode_batch(flat, add_special_tokens=False)]
        out, k = [], 0
        for ss in sents:
            spans, cur, cur_n = [], [], 0
            for s in ss:
                n = counts[k]
                k += 1
                if cur and cur_n + n > size:
                    spans.append(" ".join(t for t, _ in cur))
                    keep, kept = [], 0  # whole trailing sentences, <= overlap tokens
                    for t, m in reversed(cur):
                        if kept + m > overlap:
                            break
                        keep.insert(0, (t, m))
                        kept += m
                    cur, cur_n = keep, kept
                cur.append((s, n))
                cur_n += n
            if cur:
                spans.append(" ".join(t for t, _ in cur))
            out.append(spans)
        return out

    return chunk_all


def main(argv: list[str]) -> None:
    from rag import StoredPaper, load_settings
    from rag.chunk import make_chunker

    path, n = argv[0], int(argv[1]) if len(argv) > 1 else 1000
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(n), fh, strict=False)]
    papers = [StoredPaper(r["id"], r["title"], r["abstract"], (), ()) for r in rows]
    settings = load_settings(auto_ingest_bundled=False)
    current, fast = make_chunker(settings), batched_chunker(settings)
    current(papers[0])
    t0 = time.perf_counter()
    a = [current(p) for p in papers]
    t1 = time.perf_counter()
    b = [spans for s in range(0, len(papers), 64) for spans in fast(papers[s:s + 64])]
    t2 = time.perf_counter()
    ca, cb = sum(map(len, a)), sum(map(len, b))
    print(f"make_chunker (SentenceSplitter): {len(papers) / (t1 - t0):8.0f} papers/s, {ca} chunks")
    print(
        f"batched sketch (regex+encode_batch): {len(papers) / (t2 - t1):8.0f} papers/s, {cb} chunks"
    )
    same = sum(len(x) == len(y) for x, y in zip(a, b, strict=False))
    print(f"papers with the same chunk count: {same}/{len(papers)}")


if __name__ == "__main__":
    main(sys.argv[1:])
