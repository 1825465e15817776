"""`ask sync` of 1,000 new papers into a large index, next to the same sync into an empty one.

The new papers are synthetic (benchmarks/make_corpus.py, ids that no base paper has),
served as Hugging Face daily-papers JSON pages (50 papers a day) by a local HTTP
server; the base index is ``--base`` other synthetic papers ingested with `ask ingest`
(built once and kept under ``--work``, then copied for each run). Both syncs are the
real `ask sync hf --since ... --until ...` in a subprocess (model load included on both
sides), so the difference is what a bigger index costs a sync: the merge against the
index, the HNSW inserts, and bringing the BM25 cache up to date (a new segment since
issue 23; a from-scratch rebuild of the synced index's cache is timed beside it, for
comparison).

    python benchmarks/sync.py --base 100000          # the README's figure
    python benchmarks/sync.py --base 10000 --new 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from make_corpus import make_papers  # noqa: E402

FIRST_DAY = dt.date(2025, 9, 1)
PER_DAY = 50  # under the 100 entries a day the feed asks for (a full day is reported)


def hf_pages(records: list[dict]) -> dict[str, bytes]:
    """date -> the daily papers API's JSON for that day (PER_DAY papers each)."""
    pages: dict[str, bytes] = {}
    for start in range(0, len(records), PER_DAY):
        day = (FIRST_DAY + dt.timedelta(days=start // PER_DAY)).isoformat()
        pages[day] = json.dumps([{
            "paper": {"id": r["id"], "title": r["title"], "summary": r["abstract"],
                      "authors": [{"name": a.strip()} for a in r["authors"].split(",")],
                      "publishedAt": f"{day}T12:00:00.000Z", "upvotes": 3},
            "title": r["title"], "publishedAt": f"{day}T12:00:00.000Z", "numComments": 0,
        } for r in records[start:start + PER_DAY]]).encode()
    return pages


def serve(pages: dict[str, bytes]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            day = parse_qs(urlsplit(self.path).query).get("date", [""])[0]
            body = pages.get(day, b"[]")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/api/daily_papers"


def env_for(data: Path, embedder: str, url: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABSTRACTA_")}
    env.update(ABSTRACTA_DATA_DIR=str(data), ABSTRACTA_EMBEDDER=embedder,
               PYTHONPATH=str(HERE.parent), ANONYMIZED_TELEMETRY="False")
    if url:
        env["ABSTRACTA_HF_PAPERS_URL"] = url
    return env


def base_index(n: int, embedder: str, work: Path, seed: int) -> Path:
    """The base index of ``n`` papers, built once (a ``complete`` marker says it finished)."""
    data = work / f"base-{n}-{embedder}-{seed}"
    if (data / "complete").exists():
        return data
    shutil.rmtree(data, ignore_errors=True)
    corpus = work / f"base-{n}-{seed}.jsonl"
    with corpus.open("w", encoding="utf-8") as fh:
        for record in make_papers(n, seed):
            fh.write(json.dumps(record) + "\n")
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "rag.cli", "ingest", str(corpus)], check=True,
                   env=env_for(data, embedder), stdout=subprocess.DEVNULL)
    print(f"base index: {n:,} papers ingested in {time.monotonic() - start:.0f} s", flush=True)
    (data / "complete").touch()
    return data


def timed_sync(data: Path, embedder: str, url: str, days: int) -> tuple[float, str]:
    last = FIRST_DAY + dt.timedelta(days=days - 1)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "sync", "hf", "--since",
                           FIRST_DAY.isoformat(), "--until", last.isoformat()],
                          env=env_for(data, embedder, url), capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"ask sync failed: {proc.stderr[-2000:]}")
    return wall, proc.stdout.splitlines()[0]


_REBUILD = """
import shutil, sys, time
from rag.settings import load_settings
from rag.store import open_store
settings = load_settings(data_dir=sys.argv[1], embedder=sys.argv[2])
shutil.rmtree(open_store(settings).lexical_folder, ignore_errors=True)
store = open_store(settings)
start = time.monotonic()
store.lexical()
print(time.monotonic() - start)
"""


def bm25_rebuild(data: Path, embedder: str) -> float:
    """Seconds to rebuild the BM25 cache of the index in ``data`` from the collection, in
    a fresh process as `ask sync` does it (the synthetic abstracts reuse the bundled
    sentences, so a process that tokenized them once would rebuild unrealistically fast)."""
    proc = subprocess.run([sys.executable, "-c", _REBUILD, str(data), embedder], check=True,
                          env=env_for(data, embedder), capture_output=True, text=True)
    return float(proc.stdout.split()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=100_000, help="papers in the big index")
    parser.add_argument("--new", type=int, default=1000, help="papers the sync brings")
    parser.add_argument("--embedder", default="wordllama", choices=["wordllama", "minilm"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/abstracta-bench-sync"))
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    # The papers after the base's: the same generator, so ids no base paper has.
    records = list(islice(make_papers(args.base + args.new, args.seed), args.base, None))
    server, url = serve(hf_pages(records))
    days = -(-args.new // PER_DAY)
    base = base_index(args.base, args.embedder, args.work, args.seed)
    runs = {}
    for label, source in (("empty index", None), (f"{args.base:,}-paper index", base)):
        data = args.work / "run"
        shutil.rmtree(data, ignore_errors=True)
        if source is not None:
            shutil.copytree(source, data)
        wall, summary = timed_sync(data, args.embedder, url, days)
        runs[label] = (wall, summary, bm25_rebuild(data, args.embedder))
    server.shutdown()
    print(f"\n`ask sync hf` of {args.new:,} new papers ({days} daily pages, {args.embedder}, "
          f"{os.cpu_count()} cores, shared machine)")
    print("| into | sync wall (s) | BM25 cache rebuild alone (s) | summary |\n|---|---|---|---|")
    for label, (wall, summary, bm25) in runs.items():
        print(f"| {label} | {wall:.1f} | {bm25:.1f} | {summary.split(' in ')[0]} |")
    (empty, *_), (big, *_) = runs.values()
    print(f"\nratio big/empty: {big / empty:.2f}x")


if __name__ == "__main__":
    main()
