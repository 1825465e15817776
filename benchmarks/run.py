"""Abstracta's benchmarks in one command, next to llama-index's default pipeline.

    python benchmarks/run.py --papers 10000     # ~15 min on 2 cores
    python benchmarks/run.py --papers 100000    # peer: ingest only above --peer-query-max
    python benchmarks/run.py --quick            # ~2-minute smoke run at 2k papers
    python benchmarks/run.py --papers 1000000 --kill-at 0.5   # + a SIGKILLed, resumed ingest

Measures, each side in its own child process (peak RSS from ``os.wait4``):
ingest throughput and memory (Abstracta, the llama-index peer with the same
embedder and chunking, and Chroma's own ``collection.add`` of the same vectors as
a floor); query latency in-process (search, offline answer; peer: fusion
retriever) and as a cold process (``ask --offline``; ``peer.py ask``); the same
against a ``chroma run`` server; and issue 2's speed bar (first-run ingest of the
bundled corpus with MiniLM, ``ask --help``, an in-process answer); with ``--kill-at``,
issue 13's resumability check (:func:`resume_check`). Prints a table
and writes ``benchmarks/results/latest.json`` and ``latest.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
DEV_SET = HERE.parent / "eval" / "datasets" / "dev.jsonl"
GIB = 1024**3


# --- child processes ----------------------------------------------------------------------

def child_env(**abstracta) -> dict:
    """A clean environment: no ABSTRACTA_*/OPENAI_* from the caller, telemetry off."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("ABSTRACTA_", "OPENAI_"))}
    env.update(ANONYMIZED_TELEMETRY="False", GRADIO_ANALYTICS_ENABLED="False",
               TOKENIZERS_PARALLELISM="false")
    env.update({f"ABSTRACTA_{k.upper()}": str(v) for k, v in abstracta.items() if v is not None})
    return env


def run_child(cmd: list[str], env: dict, cwd: Path, log: Path | None = None) -> dict:
    """Run cmd to completion: wall seconds, peak RSS (bytes) of that child, exit code."""
    sink = open(log, "ab") if log else contextlib.nullcontext(subprocess.DEVNULL)  # noqa: SIM115
    with sink as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    # CPU seconds are reported next to wall time: on a shared machine they are the less noisy
    # figure.
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "max_rss": usage.ru_maxrss * 1024, "rc": proc.returncode}


def task(name: str, args: dict, ctx: dict, env: dict | None = None) -> dict:
    """Run one tasks.py task in a child; its JSON result plus wall time and peak RSS."""
    out = ctx["work"] / f"{name}-{int(time.time() * 1000)}.json"
    cmd = [sys.executable, str(HERE / "tasks.py"), name, json.dumps(args), str(out)]
    print(f"  .. {name} {args.get('label', '')}", flush=True)
    res = run_child(cmd, env or child_env(), ctx["work"], ctx["log"])
    if res["rc"] != 0:
        raise SystemExit(f"{name} failed (exit {res['rc']}); see {ctx['log']}")
    return {**json.loads(out.read_text()), "wall_s": round(res["wall_s"], 3),
            "cpu_s": round(res["cpu_s"], 2),
            "max_rss_mib": round(res["max_rss"] / 2**20, 1)}


def cold_runs(cmd_for, env: dict, ctx: dict, questions: list[str], runs: int) -> dict:
    """Wall time of ``runs`` fresh processes (one question each), after one untimed run."""
    walls, cpus = [], []
    for i, q in enumerate([questions[0]] + questions[1:runs + 1]):
        res = run_child(cmd_for(q), env, ctx["work"], ctx["log"])
        if res["rc"] != 0:
            raise SystemExit(
                f"cold run failed (exit {res['rc']}): {cmd_for(q)[:3]}; see {ctx['log']}"
            )
        if i:
            walls.append(res["wall_s"])
            cpus.append(res["cpu_s"])
    return {"median_s": round(statistics.median(walls), 3), "max_s": round(max(walls), 3),
            "cpu_median_s": round(statistics.median(cpus), 3), "n": len(walls)}


# --- inputs ------------------------------------------------------------------------------

def corpus_records(path: Path) -> list[tuple[str, str]]:
    """(title, abstract) of every paper in a JSONL file or the bundled folder."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            return [(o["title"], o["abstract"]) for o in map(json.loads, fh)]
    from rag import expand_paths, load_path

    return [(p.title, p.abstract) for f in expand_paths([path]) for p in load_path(f).papers]


def make_questions(path: Path, n: int, seed: int) -> list[str]:
    """Half dev-set questions, half reworded titles and abstract sentences of this corpus."""
    rng = random.Random(seed)
    dev = [json.loads(line)["question"] for line in DEV_SET.read_text().splitlines() if line]
    out = dev[: n // 2]
    records = corpus_records(path)
    for i, (title, abstract) in enumerate(rng.sample(records, n - len(out))):
        if i % 2 == 0:
            desc = title.partition(":")[2].strip() or title
            out.append(f"Which paper is about {desc[0].lower()}{desc[1:]}?")
        else:
            sentences = [s for s in abstract.split(". ") if len(s) > 40] or [abstract]
            s = rng.choice(sentences).rstrip(".")
            out.append(f"Is there work where {s[0].lower()}{s[1:]}?")
    return out


def corpus_for(n: int, ctx: dict) -> Path:
    from rag import BUNDLED_CORPUS

    if n == 0:
        return BUNDLED_CORPUS
    path = ctx["work"] / "corpora" / f"papers-{n}-seed{ctx['seed']}.jsonl"
    if not path.exists():
        sys.path.insert(0, str(HERE))
        from make_corpus import write_corpus

        t0 = time.perf_counter()
        write_corpus(n, path, ctx["seed"])
        print(f"  .. corpus of {n} papers written in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


# --- a killed ingest, resumed ------------------------------------------------------------

def _progress_done(seen: bytes, total: int) -> int:
    """The largest ``done`` that ``ask ingest``'s progress bar has drawn as ``done/total``."""
    import re

    return max((int(n) for n in re.findall(rb"(\d+)/%d" % total, seen)), default=0)


def _descendants(pid: int) -> list[int]:
    kids, todo = [], [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    todo += [int(k) for k in fh.read().split()]
        if p != pid:
            kids.append(p)
    return kids


def _killed_ingest(cmd: list[str], env: dict, total: int, fraction: float, ctx: dict) -> dict:
    """Run ``ask ingest`` under a pty (so it draws its progress bar, which counts records
    done/total) and SIGKILL it once the bar passes ``fraction`` of ``total``, as a crash,
    the OOM killer or a power cut would: no clean stop. Returns how far it got."""
    import pty
    import select
    import signal

    master, slave = pty.openpty()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**env, "TERM": "xterm", "COLUMNS": "120"}, cwd=ctx["work"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen, killed_at, workers = b"", None, []
    try:
        while proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    seen = (seen + os.read(master, 65536))[-65536:]  # the bar redraws: keep a tail
            done = _progress_done(seen, total)
            if done >= fraction * total:
                workers = _descendants(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = done
                break
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        os.close(master)
    wall = time.perf_counter() - t0
    time.sleep(5)  # the workers die with their parent (PR_SET_PDEATHSIG); give them a moment
    left = [p for p in workers if Path(f"/proc/{p}").exists()
            and Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"]
    with open(ctx["log"], "ab") as log:
        log.write(seen[-4000:])
    return {"wall_s": round(wall, 1), "killed_at_records": killed_at,
            "rc": os.waitstatus_to_exitcode(status),
            "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "processes_left_behind": len(left)}


def resume_check(path: Path, embedder: str, base: Path, whole_dir: Path, fraction: float,
                 ctx: dict) -> dict:
    """Issue 13's resumability bar: ``ask ingest FILE`` SIGKILLed at ``fraction`` of its
    records, then the same command run again to the end; the resumed index is compared
    with the uninterrupted one this run built in ``whole_dir`` (chunk and paper counts and
    order-free checksums of every chunk and paper record) and with the papers the file
    should give (ids + content hashes; see tasks.index_fingerprint)."""
    data = base / "resumed"
    env = child_env(data_dir=data, embedder=embedder, auto_ingest_bundled="false")
    cmd = [str(BIN / "ask"), "ingest", str(path)]
    total = sum(1 for line in path.open("rb") if line.strip())
    print(f"  .. ask ingest, SIGKILL at {fraction:.0%} of {total} records, then again", flush=True)
    first = _killed_ingest(cmd, env, total, fraction, ctx)
    second = run_child(cmd, env, ctx["work"], ctx["log"])
    if second["rc"] != 0:
        raise SystemExit(f"resumed ingest failed (exit {second['rc']}); see {ctx['log']}")
    resumed = task("index-fingerprint", {"data_dir": str(data), "embedder": embedder,
                                         "path": str(path), "label": "resumed"}, ctx)
    whole = task("index-fingerprint", {"data_dir": str(whole_dir), "embedder": embedder,
                                       "label": "uninterrupted"}, ctx)
    keys = ("papers", "chunks", "chunk_checksum", "paper_checksum")
    return {
        "fraction": fraction, "records": total, "killed_run": first,
        "resumed_run": {"wall_s": round(second["wall_s"], 1), "cpu_s": round(second["cpu_s"], 1),
                        "max_rss_mib": round(second["max_rss"] / 2**20, 1)},
        "total_wall_s": round(first["wall_s"] + second["wall_s"], 1),
        "resumed_index": {k: resumed[k] for k in (*keys, "consistent")},
        "uninterrupted_index": {k: whole[k] for k in (*keys, "consistent")},
        "same_as_uninterrupted": all(resumed[k] == whole[k] for k in keys),
        "papers_as_expected_from_file": (
            resumed["papers"] == resumed["expected_papers"]
            and resumed["paper_checksum"] == resumed["expected_paper_checksum"]),
        "expected_exact": resumed["expected_exact"],
        "killed": first["killed_at_records"] is not None,
    }


# --- one corpus size ---------------------------------------------------------------------

def bench_size(n: int, embedder: str, ctx: dict, peer_ingest: bool, peer_query: bool,
               chroma_url: str | None = None) -> dict:
    """Ingest + query benchmarks for one corpus (n=0: the bundled corpus)."""
    label = f"{n or 'bundled'}/{embedder}" + ("/server" if chroma_url else "")
    print(f"== {label}", flush=True)
    path = corpus_for(n, ctx)
    base = ctx["work"] / label.replace("/", "-")
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    qfile = base / "questions.json"
    questions = make_questions(path, ctx["questions"], ctx["seed"])
    qfile.write_text(json.dumps(questions))
    a_dir, p_dir, f_dir = base / "abstracta", base / "peer", base / "floor"
    common = {"embedder": embedder, "questions": str(qfile), "label": label,
              "chroma_url": chroma_url}
    prof = ctx["profile"]
    out: dict = {"papers_in_file": len(corpus_records(path)), "embedder": embedder,
                 "questions": len(questions)}

    out["ingest_abstracta"] = task("ingest-abstracta", {
        **common, "path": str(path), "data_dir": str(a_dir),
        "profile": str(base / "ingest-abstracta.prof") if prof else None}, ctx)
    if peer_ingest:
        out["ingest_peer"] = task("ingest-peer", {
            **common, "path": str(path), "folder": str(p_dir), "data_dir": str(a_dir),
            "profile": str(base / "ingest-peer.prof") if prof else None}, ctx)
    if not chroma_url and ctx["floor"]:
        out["ingest_floor"] = task("ingest-floor", {**common, "data_dir": str(a_dir),
                                                    "folder": str(f_dir)}, ctx)
    if ctx.get("kill_at") and n and not chroma_url:
        out["resume"] = resume_check(path, embedder, base, a_dir, ctx["kill_at"], ctx)
    for side in ("abstracta", "peer", "floor"):
        r = out.get(f"ingest_{side}")
        if r:
            r["papers_per_s"] = round(r["papers"] / r["ingest_s"], 1)
            r["chunks_per_s"] = round(r["chunks"] / r["ingest_s"], 1)

    out["query_abstracta"] = task("query-abstracta", {
        **common, "data_dir": str(a_dir),
        "profile": str(base / "query-abstracta.prof") if prof else None}, ctx)
    env = child_env(data_dir=a_dir, embedder=embedder, chroma_url=chroma_url)
    out["cold_ask"] = cold_runs(lambda q: [str(BIN / "ask"), "--offline", q], env, ctx,
                                questions, ctx["cold"])
    if peer_query:
        out["query_peer"] = task("query-peer", {**common, "folder": str(p_dir),
                                                "data_dir": str(a_dir)}, ctx)
        out["cold_peer"] = cold_runs(
            lambda q: [sys.executable, str(HERE / "peer.py"), "ask", str(p_dir), q],
            child_env(data_dir=a_dir, embedder=embedder), ctx, questions, ctx["cold"])
    if not ctx["keep"]:
        shutil.rmtree(base, ignore_errors=True)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_chroma_server(path: Path, port: int, log, cwd: Path | None = None,
                        log_name: str = "its log"):
    """``chroma run`` on 127.0.0.1:``port`` (telemetry off), once its heartbeat answers;
    its output to ``log`` (a file object, or subprocess.DEVNULL) named ``log_name``."""
    proc = subprocess.Popen([str(BIN / "chroma"), "run", "--path", str(path), "--port", str(port),
                             "--host", "127.0.0.1"], env=child_env(), stdout=log, stderr=log,
                            cwd=cwd)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    proc.wait()
    raise SystemExit(f"chroma server did not start; see {log_name}")


def bench_server(n: int, ctx: dict) -> dict:
    """The query benchmark (and its ingest) against a local ``chroma run`` server."""
    path = ctx["work"] / "chroma-server"
    shutil.rmtree(path, ignore_errors=True)
    port = free_port()
    log = open(ctx["log"], "ab")  # noqa: SIM115 (the server outlives this function)
    try:
        proc = start_chroma_server(path, port, log, ctx["work"], str(ctx["log"]))
    except SystemExit:
        log.close()
        shutil.rmtree(path, ignore_errors=True)
        raise
    url = f"http://127.0.0.1:{port}"
    try:
        out = bench_size(n, "wordllama", ctx, peer_ingest=False, peer_query=False,
                         chroma_url=url)
    finally:
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
        log.close()
        shutil.rmtree(path, ignore_errors=True)
    out["server_max_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    return out


def speed_bar(ctx: dict) -> dict:
    """``ask --help`` wall time (median of 10 cold processes)."""
    runs = [run_child([str(BIN / "ask"), "--help"], child_env(), ctx["work"]) for _ in range(11)][
        1:
    ]
    return {"ask_help_median_s": round(statistics.median(r["wall_s"] for r in runs), 3),
            "ask_help_cpu_median_s": round(statistics.median(r["cpu_s"] for r in runs), 3)}


# --- report ------------------------------------------------------------------------------

def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text()
               .splitlines() if line.startswith("MemTotal"))
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem / GIB, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


def _fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        v = f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return f"{v}{unit}"


def _ratio(a, b, higher_better=True):
    if not a or not b:
        return "-"
    return f"{(a / b if higher_better else b / a):.2f}x"


def rows_for(label: str, s: dict) -> list[list[str]]:
    """Table rows for one size: metric, Abstracta, peer, floor, Abstracta vs peer."""
    ia, ip, fl = s["ingest_abstracta"], s.get("ingest_peer"), s.get("ingest_floor")
    qa, qp = s["query_abstracta"], s.get("query_peer")
    g = lambda d, *keys: None if d is None else _dig(d, keys)  # noqa: E731
    return [
        [label, "ingest papers/s", _fmt(ia["papers_per_s"]), _fmt(g(ip, "papers_per_s")),
         _fmt(g(fl, "papers_per_s")), _ratio(ia["papers_per_s"], g(ip, "papers_per_s"))],
        [label, "ingest chunks/s", _fmt(ia["chunks_per_s"]), _fmt(g(ip, "chunks_per_s")),
         _fmt(g(fl, "chunks_per_s")), _ratio(ia["chunks_per_s"], g(ip, "chunks_per_s"))],
        [label, "ingest time (s) / chunks", f"{ia['ingest_s']:.1f} / {ia['chunks']}",
         f"{ip['ingest_s']:.1f} / {ip['chunks']}" if ip else "-",
         f"{fl['ingest_s']:.1f} / {fl['chunks']}" if fl else "-",
         _ratio(ia["ingest_s"], g(ip, "ingest_s"), higher_better=False)],
        [label, "ingest peak RSS (MiB)", _fmt(ia["max_rss_mib"]), _fmt(g(ip, "max_rss_mib")),
         _fmt(g(fl, "max_rss_mib")), _ratio(ia["max_rss_mib"], g(ip, "max_rss_mib"), False)],
        [label, "retrieval median / p95 (ms)",
         f"{qa['search']['median_ms']:.1f} / {qa['search']['p95_ms']:.1f}",
         f"{qp['search']['median_ms']:.1f} / {qp['search']['p95_ms']:.1f}" if qp else "-", "",
         _ratio(qa["search"]["p95_ms"], g(qp, "search", "p95_ms"), False) + " (p95)"
         if qp else "-"],
        [label, "offline answer median / p95 (ms)",
         f"{qa['answer']['median_ms']:.1f} / {qa['answer']['p95_ms']:.1f}", "n/a (no answerer)",
         "", "-"],
        [label, "cold process median (s)", _fmt(s["cold_ask"]["median_s"]),
         _fmt(g(s.get("cold_peer"), "median_s")), "",
         _ratio(s["cold_ask"]["median_s"], g(s.get("cold_peer"), "median_s"), False)],
        [label, "cold process CPU median (s)", _fmt(s["cold_ask"].get("cpu_median_s")),
         _fmt(g(s.get("cold_peer"), "cpu_median_s")), "",
         _ratio(s["cold_ask"].get("cpu_median_s"), g(s.get("cold_peer"), "cpu_median_s"), False)],
        [label, "ingest child wall / CPU (s)", f"{ia['wall_s']:.1f} / {ia['cpu_s']:.1f}",
         f"{ip['wall_s']:.1f} / {ip['cpu_s']:.1f}" if ip else "-",
         f"{fl['wall_s']:.1f} / {fl['cpu_s']:.1f}" if fl else "-", ""],
        [label, "query peak RSS (MiB)", _fmt(qa["max_rss_mib"]), _fmt(g(qp, "max_rss_mib")),
         "", "-"],
    ]


def _dig(d, keys):
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def targets(res: dict) -> list[list[str]]:
    """Each target of issues 2 and 6 with the measured figure and met / missed."""
    def check(ok):
        return "n/a" if ok is None else ("met" if ok else "MISSED")

    sizes, bar = res["sizes"], res["speed_bar"]
    main_key = str(res["config"]["papers"])
    big = sizes.get(main_key)
    out = []
    for key, s in sizes.items():
        ip = s.get("ingest_peer")
        if ip:
            r = s["ingest_abstracta"]["papers_per_s"] / ip["papers_per_s"]
            # Issue 6's 2x is for the fast embedder. With MiniLM both sides spend most of
            # the time in the same model on the same 2 cores, so the ratio is shown, not
            # judged; the bundled-corpus bar there is the < 30 s first run below.
            status = check(r >= 2) if s["embedder"] != "minilm" else "info (embedding-bound)"
            out.append([f"ingest >= 2x peer papers/s ({_size(key)}, {s['embedder']})", f"{r:.2f}x",
                        status])
    hundred = sizes.get("100000")
    if hundred:
        ia = hundred["ingest_abstracta"]
        out.append(["100k ingest < 300 s (wordllama)", f"{ia['ingest_s']:.0f} s "
                    f"(child wall {ia['wall_s']:.0f} s)", check(ia["wall_s"] < 300)])
        out.append(["100k ingest memory < 4 GiB", f"{ia['max_rss_mib'] / 1024:.2f} GiB",
                    check(ia["max_rss_mib"] < 4096)])
        p95 = hundred["query_abstracta"]["search"]["p95_ms"]
        out.append(["retrieval p95 < 50 ms at 100k", f"{p95:.1f} ms", check(p95 < 50)])
    million = sizes.get("1000000")
    if million:
        # Issue 13's 1M bars; the ingest rate includes the lexical build (it runs inside
        # `ask ingest`, so papers/s is papers over the whole command's wall time).
        ia = million["ingest_abstracta"]
        out.append(["1M ingest >= 600 papers/s (wordllama, incl. lexical build)",
                    f"{ia['papers_per_s']:.0f} papers/s ({ia['ingest_s']:.0f} s)",
                    check(ia["papers_per_s"] >= 600)])
        out.append(["1M ingest peak RSS <= 8 GiB", f"{ia['max_rss_mib'] / 1024:.2f} GiB",
                    check(ia["max_rss_mib"] <= 8192)])
        p95 = million["query_abstracta"]["search"]["p95_ms"]
        out.append(["retrieval p95 <= 50 ms at 1M", f"{p95:.1f} ms", check(p95 <= 50)])
    if not hundred:
        out.append(["100k targets (ingest < 5 min, < 4 GiB, p95 < 50 ms)",
                    "not run (use --papers 100000)", "n/a"])
        if big:
            p95 = big["query_abstracta"]["search"]["p95_ms"]
            out.append([f"retrieval p95 < 50 ms (at {main_key}, proxy)", f"{p95:.1f} ms",
                        check(p95 < 50)])
    for key, s in sizes.items():
        r = s.get("resume")
        if r:
            k = r["killed_run"]
            same = r["same_as_uninterrupted"] and r["papers_as_expected_from_file"] and (
                r["resumed_index"]["consistent"]) and not k["processes_left_behind"]
            out.append([
                f"resumable after SIGKILL at {r['fraction']:.0%} ({_size(key)}): same index",
                (f"killed at {k['killed_at_records']} of {r['records']} records; resumed run "
                 f"{r['resumed_run']['wall_s']:.0f} s (both {r['total_wall_s']:.0f} s); "
                 f"{r['resumed_index']['papers']} papers / {r['resumed_index']['chunks']} chunks"
                 f", checksums {'equal' if r['same_as_uninterrupted'] else 'DIFFER'}, papers "
                 f"{'as' if r['papers_as_expected_from_file'] else 'NOT as'} in the file, "
                 f"{k['processes_left_behind']} processes left")
                if r["killed"] else "the ingest ended before the kill point",
                check(same) if r["killed"] else "n/a"])
    for key, s in sizes.items():
        c = s["cold_ask"]["median_s"]
        cpu = s["cold_ask"].get("cpu_median_s")
        out.append([f"cold `ask` median < 2.5 s ({_size(key)})",
                    f"{c:.2f} s wall ({cpu:.2f} s CPU)", check(c < 2.5)])
    if "0" in sizes:
        b = sizes["0"]
        out.append(["first-run ingest of bundled corpus (MiniLM) < 30 s",
                    f"{b['ingest_abstracta']['wall_s']:.1f} s (ingest call "
                    f"{b['ingest_abstracta']['ingest_s']:.1f} s)",
                    check(b["ingest_abstracta"]["wall_s"] < 30)])
        m = b["query_abstracta"]["answer"]["median_ms"]
        out.append(["in-process answer median < 100 ms (bundled, MiniLM)", f"{m:.1f} ms",
                    check(m < 100)])
    out.append(["`ask --help` < 0.5 s", f"{bar['ask_help_median_s']:.3f} s wall "
                f"({bar['ask_help_cpu_median_s']:.3f} s CPU)",
                check(bar["ask_help_median_s"] < 0.5)])
    return out


def _size(key: str) -> str:
    return "bundled" if key == "0" else key


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])


def render(res: dict) -> str:
    m = res["machine"]
    parts = [
        f"# Abstracta benchmarks ({res['date']})", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"{m['platform']}; load average at start {m['loadavg_start']}, at end "
        f"{m.get('loadavg_end')}.", "",
        f"Command: `{res['command']}`. Peer: llama-index {res['versions'].get('llama-index-core')}"
        f" default pipeline (VectorStoreIndex.from_documents -> ChromaVectorStore, SentenceSplitter"
        f" with Abstracta's chunk size/overlap/tokenizer, Abstracta's embedder wrapped as a "
        f"BaseEmbedding, embed_batch_size 256) and QueryFusionRetriever(vector + BM25, "
        f"reciprocal_rerank, num_queries=1). Floor: Chroma `collection.add` of Abstracta's own "
        f"chunks and vectors. Ratios: Abstracta vs peer (>1 = Abstracta better).", "",
        "## Side by side", "",
        table(["papers", "metric", "Abstracta", "llama-index peer", "Chroma floor", "ratio"],
              [r for key, s in res["sizes"].items()
               for r in rows_for(f"{'bundled' if key == '0' else key} ({s['embedder']})", s)]),
    ]
    if res.get("server"):
        s = res["server"]
        qa = s["query_abstracta"]
        parts += ["", f"## Chroma server mode ({res['config']['server_papers']} papers, "
                  "wordllama, `chroma run` on localhost)", "",
                  table(["metric", "Abstracta"], [
                      ["ingest papers/s", _fmt(s["ingest_abstracta"]["papers_per_s"])],
                      ["retrieval median / p95 (ms)",
                       f"{qa['search']['median_ms']:.1f} / {qa['search']['p95_ms']:.1f}"],
                      ["offline answer median / p95 (ms)",
                       f"{qa['answer']['median_ms']:.1f} / {qa['answer']['p95_ms']:.1f}"],
                      ["cold `ask` median wall / CPU (s)",
                       f"{s['cold_ask']['median_s']:.2f} / {s['cold_ask']['cpu_median_s']:.2f}"],
                      ["server peak RSS (MiB)", _fmt(s["server_max_rss_mib"])]])]
    parts += ["", "## Targets", "", table(["target", "measured", "status"], targets(res)), ""]
    notes = res.get("notes") or []
    if notes:
        parts += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(parts)


def versions() -> dict:
    from eval.cli import library_versions

    return library_versions(("abstracta", "chromadb", "llama-index-core",
                             "llama-index-vector-stores-chroma", "llama-index-retrievers-bm25",
                             "wordllama", "onnxruntime", "bm25s"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=10000, help="synthetic corpus size")
    parser.add_argument("--quick", action="store_true", help="~2-minute smoke run at 2k papers")
    parser.add_argument("--questions", type=int, default=240, help="questions per corpus (>= 200)")
    parser.add_argument("--cold-runs", type=int, default=10, help="cold processes per side")
    parser.add_argument("--peer-query-max", type=int, default=10000,
                        help="above this many papers the peer is benchmarked for ingest only")
    parser.add_argument("--no-peer", action="store_true", help="skip the llama-index peer")
    parser.add_argument("--no-server", action="store_true", help="skip the Chroma server run")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the bare-Chroma floor ingest (at 1M it takes most of an hour)")
    parser.add_argument("--no-bundled", action="store_true",
                        help="skip the bundled-corpus (MiniLM) row and the ingest speed bar")
    parser.add_argument("--profile", action="store_true",
                        help="write cProfile files of the ingest and query loops (keeps work dir)")
    parser.add_argument("--kill-at", type=float, default=None, metavar="FRACTION",
                        help="also SIGKILL an `ask ingest` of the corpus at this fraction of "
                             "its records (e.g. 0.5), run it again, and compare the index with "
                             "the uninterrupted one")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/abstracta-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the indexes in --workdir")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json/md go")
    args = parser.parse_args(argv)
    if args.quick:
        args.papers, args.questions, args.cold_runs = 2000, 60, 3
    args.workdir.mkdir(parents=True, exist_ok=True)
    ctx = {"work": args.workdir, "log": args.workdir / "children.log", "seed": args.seed,
           "questions": args.questions, "cold": args.cold_runs, "profile": args.profile,
           "keep": args.keep or args.profile, "kill_at": args.kill_at,
           "floor": not args.no_floor}
    ctx["log"].write_text("")
    res: dict = {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                 "command": "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None
                                                                   else argv),
                 "machine": machine(), "versions": versions(),
                 "config": {"papers": args.papers, "questions": args.questions,
                            "cold_runs": args.cold_runs, "seed": args.seed,
                            "server_papers": None}, "sizes": {}, "notes": []}
    t0 = time.perf_counter()
    res["speed_bar"] = speed_bar(ctx)
    peer = not args.no_peer
    if not args.no_bundled:
        # --quick: the MiniLM peer alone takes minutes; its code path is the 2k one anyway.
        bundled_peer = peer and not args.quick
        res["sizes"]["0"] = bench_size(0, "minilm", ctx, bundled_peer, bundled_peer)
    peer_query = peer and args.papers <= args.peer_query_max
    if peer and not peer_query:
        res["notes"].append(f"Peer at {args.papers} papers: ingest only (its query benchmark "
                            f"runs up to --peer-query-max={args.peer_query_max} papers).")
    res["sizes"][str(args.papers)] = bench_size(args.papers, "wordllama", ctx, peer, peer_query)
    if not args.no_server:
        server_n = min(args.papers, 10000)
        res["config"]["server_papers"] = server_n
        res["server"] = bench_server(server_n, ctx)
    res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    res["total_s"] = round(time.perf_counter() - t0, 1)
    res["notes"].append("Other processes shared this machine during the run (see load "
                        "averages); timings are noisy.")
    if any(s.get("ingest_peer") for s in res["sizes"].values()):
        res["notes"].append("Chunks differ between the sides: llama-index's splitter is "
                            "metadata-aware and subtracts the title (embedded with every chunk) "
                            "from the chunk size, so the peer makes more, shorter chunks; "
                            "compare chunks/s too.")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(res, indent=2))
    md = render(res)
    (args.out / "latest.md").write_text(md)
    print("\n" + md)
    print(f"(total {res['total_s']:.0f} s; results in {args.out})")


if __name__ == "__main__":
    main()
