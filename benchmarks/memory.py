"""Peak memory of a whole ingest, a small and a ten times larger JSON Lines file side by side.

    python benchmarks/memory.py                    # 20 MB and 200 MB files, wordllama
    python benchmarks/memory.py --sizes 5 20       # a quicker look

Issue 13's bar: the 200 MB file peaks at <= 1.5 GiB, and within +-20% of the 20 MB
file's peak plus the index's own growth, so memory is set by budgets, not by the file.
Both files are synthetic arXiv-like papers from ``make_corpus.py`` with one seed (the
small file is the first tenth of the large one: the same papers' shape). Each ingest
(``ask ingest FILE`` into a fresh data dir, as a user runs it) is a child process; its
peak is measured two ways: the largest single process (``os.wait4``'s ru_maxrss, which
covers the ingest worker processes too) and the whole process tree summed, sampled from
/proc every 0.2 s (the workers run beside the parent). A second child only reads the
file's records as ingest does (``rag.ingest.open_files`` then ``read_records``: checked,
counted, then streamed; none kept) to show what reading costs on its own.
The index's own growth is what of the index lives in memory: Chroma's vector index files
(vectors and HNSW graph, held in memory; not chroma.sqlite3, the metadata store on disk)
and the BM25 arrays (memory-mapped: an upper bound).
Results: ``benchmarks/results/memory.json`` and ``memory.md``.
"""

# Component-level: its read-only child times ingest's reader (rag.ingest.open_files, read_records).
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_corpus import make_papers, write_corpus  # noqa: E402
from run import BIN, RESULTS, child_env, machine, table  # noqa: E402

MIB = 2**20
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids += [int(k) for k in fh.read().split()]
    except OSError:
        pass
    return kids


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants, now."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            continue
        todo += _children(p)
    return total


def measure(cmd: list[str], env: dict, log: Path, every: float = 0.2) -> dict:
    """Run cmd; wall time, the largest process's peak RSS (wait4) and the sampled peak
    of the whole tree's RSS."""
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
        peak_tree = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_tree = max(peak_tree, tree_rss(proc.pid))
            time.sleep(every)
    return {"wall_s": round(time.perf_counter() - t0, 1), "rc": os.waitstatus_to_exitcode(status),
            "peak_rss_mib": round(usage.ru_maxrss * 1024 / MIB, 1),
            "peak_tree_rss_mib": round(peak_tree / MIB, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}


def folder_bytes(path: Path, skip: str = "") -> int:
    return sum(f.stat().st_size for f in path.rglob("*")
               if f.is_file() and not (skip and f.name.startswith(skip))) if path.exists() else 0


def corpora(sizes_mb: list[float], work: Path, seed: int) -> dict[float, tuple[Path, int]]:
    """One file per size, each the first papers of one seeded stream, about that many MB."""
    sample = [json.dumps(r, ensure_ascii=False) for r in make_papers(2000, seed)]
    per_paper = sum(len(s.encode()) + 1 for s in sample) / len(sample)
    out = {}
    for mb in sizes_mb:
        n = max(1, round(mb * 1e6 / per_paper))
        path = work / f"papers-{n}-seed{seed}.jsonl"
        if not path.exists():
            t0 = time.perf_counter()
            write_corpus(n, path, seed)
            print(f"  .. {path.name}: {path.stat().st_size / 1e6:.0f} MB in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        out[mb] = (path, n)
    return out


LOAD_ONLY = (
    "import sys; from pathlib import Path; from rag.ingest import IngestReport, open_files,"
    " read_records; r = IngestReport(); s = open_files([Path(sys.argv[1])], r);"
    " print(sum(1 for _ in read_records(s, r)), r.records)"
)


def bench(mb: float, path: Path, n: int, work: Path, log: Path) -> dict:
    data = work / f"data-{n}"
    shutil.rmtree(data, ignore_errors=True)
    env = child_env(data_dir=data, embedder="wordllama", auto_ingest_bundled="false")
    print(f"== {mb:g} MB ({n} papers): ask ingest", flush=True)
    log.write_text("")
    ingest = measure([str(BIN / "ask"), "ingest", str(path)], env, log)
    if ingest["rc"] != 0:
        raise SystemExit(f"ingest failed (exit {ingest['rc']}); see {log}")
    text = log.read_text()
    summary = re.search(r"(\d+) added.*?(\d+) chunks written", text)
    chunks = int(summary.group(2)) if summary else None
    print(f"== {mb:g} MB: reading the records only", flush=True)
    load = measure([sys.executable, "-c", LOAD_ONLY, str(path)], env, log)
    out = {"file_mb": round(path.stat().st_size / 1e6, 1), "papers": n, "chunks": chunks,
           "ingest": ingest, "load_only": load,
           "papers_per_s": round(n / ingest["wall_s"], 1),
           "chroma_mib": round(folder_bytes(data / "chroma") / MIB, 1),
           "vectors_mib": round(folder_bytes(data / "chroma", skip="chroma.sqlite3") / MIB, 1),
           "lexical_mib": round(folder_bytes(data / "lexical") / MIB, 1),
           "ingest_summary": text.strip().splitlines()[-2:] if text.strip() else []}
    shutil.rmtree(data, ignore_errors=True)
    return out


def verdict(rows: dict) -> list[list[str]]:
    """The bar: <= 1.5 GiB at the largest size; its peak within +-20% of the smallest
    size's peak plus the growth of the index on disk between the two."""
    small, big = rows[min(rows)], rows[max(rows)]
    out = []
    for key in ("peak_rss_mib", "peak_tree_rss_mib"):
        b, s = big["ingest"][key], small["ingest"][key]
        growth = (big["vectors_mib"] + big["lexical_mib"]) - (
            small["vectors_mib"] + small["lexical_mib"]
        )
        expected = s + growth
        out.append([f"{key} at {max(rows):g} MB <= 1536 MiB", f"{b:,.0f} MiB",
                    "met" if b <= 1536 else "MISSED"])
        out.append([f"{key} at {max(rows):g} MB within 20% of {min(rows):g} MB peak + index growth",
                    f"{b:,.0f} vs {s:,.0f} + {growth:,.0f} = {expected:,.0f} MiB "
                    f"({b / expected - 1:+.0%})",
                    "met" if abs(b / expected - 1) <= 0.2 else "MISSED"])
    return out


def render(res: dict) -> str:
    rows = res["sizes"]
    keys = sorted(rows)
    metric = [
        (
            "file (MB) / papers / chunks",
            lambda r: f"{r['file_mb']:.0f} / {r['papers']} / {r['chunks']}",
        ),
        (
            "ingest wall (s) / papers/s",
            lambda r: f"{r['ingest']['wall_s']:.0f} / {r['papers_per_s']:.0f}",
        ),
        ("ingest peak RSS, largest process (MiB)", lambda r: f"{r['ingest']['peak_rss_mib']:,.0f}"),
        (
            "ingest peak RSS, process tree (MiB)",
            lambda r: f"{r['ingest']['peak_tree_rss_mib']:,.0f}",
        ),
        (
            "reading the records alone: peak RSS (MiB)",
            lambda r: f"{r['load_only']['peak_rss_mib']:,.0f}",
        ),
        (
            "index on disk: Chroma all / vector index / BM25 (MiB)",
            lambda r: f"{r['chroma_mib']:,.0f} / {r['vectors_mib']:,.0f} / {r['lexical_mib']:,.0f}",
        ),
    ]
    m = res["machine"]
    return "\n".join([
        f"# Ingest memory, {' vs '.join(f'{k:g} MB' for k in keys)} ({res['date']})", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; load average at "
        f"start {m['loadavg_start']}. Command: `{res['command']}`. Embedder wordllama; "
        f"each ingest is `ask ingest FILE` into a fresh data dir.", "",
        table(["metric", *[f"{k:g} MB" for k in keys]],
              [[name, *[fn(rows[k]) for k in keys]] for name, fn in metric]), "",
        "## Bar", "", table(["target", "measured", "status"], verdict(rows)), ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[20, 200],
                        help="file sizes in MB (default 20 200)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/abstracta-memory"))
    parser.add_argument("--out", type=Path, default=RESULTS, help="where memory.json/md go")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    res = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
           "command": "python benchmarks/memory.py " + " ".join(sys.argv[1:] if argv is None
                                                                  else argv),
           "machine": machine(), "sizes": {}}
    for mb, (path, n) in corpora(args.sizes, args.workdir, args.seed).items():
        res["sizes"][mb] = bench(mb, path, n, args.workdir, args.workdir / f"ingest-{n}.log")
    res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    md = render(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(res, indent=2))
    (args.out / "memory.md").write_text(md)
    print("\n" + md)


if __name__ == "__main__":
    main()
