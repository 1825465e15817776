"""Issue 23: a cold `ask` against a `chroma run` server that already holds the index.

The way README tells users to serve a large index: `chroma run --path DATA/chroma`
keeps the vector index loaded, and each `ask` is a fresh client process. This script
serves the Chroma folder of an index built by ``benchmarks/run.py --keep`` (or any
``ask ingest``), then times:

- the first `ask` through the server (with the index's own data dir, the client adopts
  the lexical cache built there; with ``--client DIR``, a new client machine's data dir,
  it builds its own by reading the collection from the server: once per client);
- ``--runs`` cold `ask --offline` processes after it (median, max, CPU), each a new
  process with nothing loaded but the files in the page cache;
- the same `ask` against the embedded folder directly (no server), for comparison
  (the server stopped first: embedded Chroma must not share the folder with it).

    python benchmarks/cold_server.py --data /tmp/b1m/1000000-wordllama/abstracta \\
        --questions /tmp/b1m/1000000-wordllama/questions.json --runs 10
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BIN, child_env, free_port, start_chroma_server  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def timed_ask(question: str, env: dict, cwd: Path) -> dict:
    """One `ask --offline --json` process: wall and CPU seconds (children included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([str(BIN / "ask"), "--offline", "--json", question], env=env,
                         cwd=cwd, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"ask failed (exit {res.returncode}): {res.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}


def series(questions: list[str], env: dict, cwd: Path) -> dict:
    runs = [timed_ask(q, env, cwd) for q in questions]
    walls = [r["wall_s"] for r in runs]
    return {"median_s": round(statistics.median(walls), 3), "max_s": max(walls),
            "cpu_median_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
            "n": len(runs), "walls": walls}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="the data dir of a built index (its chroma/ folder is served)")
    parser.add_argument("--questions", type=Path, required=True, help="a JSON list of questions")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--client", type=Path, default=None,
                        help="a new client machine's data dir (default: the index's own)")
    parser.add_argument("--out", type=Path, default=RESULTS / "cold_server.json")
    args = parser.parse_args(argv)
    questions = json.loads(args.questions.read_text())
    picked = questions[1:args.runs + 1]
    client = args.client or args.data
    if args.client:
        shutil.rmtree(args.client, ignore_errors=True)
        args.client.mkdir(parents=True)
    port = free_port()
    log = client / "chroma-server.log"
    with open(log, "ab") as fh:
        t0 = time.perf_counter()
        server = start_chroma_server(args.data / "chroma", port, fh, client, str(log))
        started = time.perf_counter() - t0
        try:
            env = child_env(data_dir=client, chroma_url=f"http://127.0.0.1:{port}",
                            embedder="wordllama", auto_ingest_bundled="false")
            first = timed_ask(questions[0], env, client)
            print(f"server up in {started:.1f} s; first ask through it "
                  f"({'a new client' if args.client else 'adopting the cache'}): "
                  f"{first['wall_s']:.1f} s", flush=True)
            served = series(picked, env, client)
            print(f"cold ask via the server: median {served['median_s']:.2f} s, "
                  f"max {served['max_s']:.2f} s, CPU median {served['cpu_median_s']:.2f} s",
                  flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    env = child_env(data_dir=args.data, embedder="wordllama", auto_ingest_bundled="false")
    embedded = series(picked, env, client)
    print(f"cold ask embedded (loads the vector index itself): median "
          f"{embedded['median_s']:.2f} s, max {embedded['max_s']:.2f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "data": str(args.data),
        "client": str(args.client or "the index's own data dir"),
        "server_start_s": round(started, 1), "first_client_ask": first,
        "server": served, "embedded": embedded}, indent=1))
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
