"""A bounded load test of the UI's headless endpoint (``/ask``), on this machine only.

    python benchmarks/load_ui.py                         # 20 clients for 60 s
    python benchmarks/load_ui.py --clients 5 --seconds 15
    python benchmarks/load_ui.py --data-dir ~/.local/share/abstracta

Starts ``ask ui`` on a free 127.0.0.1 port over a data dir (default: a temporary
index of the bundled corpus, built on first use), then runs N
gradio_client clients side by side, each asking a fixed set of distinct questions
(dev-set lookups with one known paper each) until the time is up. Every answer is
checked against *its own* question: its first citation must be that question's
paper, so crossed wires between concurrent requests show up as "wrong". Prints
count, errors, wrong answers, throughput, median and p95 latency; exits 1 if any
request failed or was wrong.

Bounds: traffic goes to 127.0.0.1 only; clients stop sending at ``--seconds``
and the run is cut off at ``--seconds`` + ``--grace`` whatever happens; the UI
process is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from run import free_port  # benchmarks/ is on sys.path when a script in it runs

from eval.metrics import percentile

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "eval" / "datasets" / "dev.jsonl"
HOST = "127.0.0.1"  # never anything else: this is a load test of a local server


def dev_questions(limit: int) -> list[tuple[str, str]]:
    """(question, expected paper title) for the first single-paper lookups of the dev set."""
    out = []
    for line in DEV.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row.get("type") == "lookup" and len(row.get("gold_titles") or []) == 1:
            out.append((row["question"], row["gold_titles"][0]))
        if len(out) == limit:
            break
    return out


def quiet_env() -> dict:
    """The environment for the UI and the clients: no analytics, no telemetry, no hub."""
    env = dict(os.environ)
    env.update(GRADIO_ANALYTICS_ENABLED="False", ANONYMIZED_TELEMETRY="False",
               HF_HUB_OFFLINE="1", NO_PROXY=HOST, no_proxy=HOST)
    return env


def start_ui(data_dir: Path, port: int, log_path: Path, timeout: float) -> subprocess.Popen:
    """``ask ui`` in a child process; returns once it answers HTTP (or raises)."""
    log = open(log_path, "wb")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "ui", "--host", HOST, "--port", str(port),
         "--data-dir", str(data_dir)],
        stdout=log, stderr=subprocess.STDOUT, env=quiet_env(), cwd=tempfile.gettempdir())
    deadline = time.monotonic() + timeout
    url = f"http://{HOST}:{port}/"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"The UI exited ({proc.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    stop(proc)
    raise SystemExit(f"The UI did not start within {timeout:.0f} s; see {log_path}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def top_title(result) -> str:
    """The first cited paper of an ``ask --json`` object ('' when none)."""
    if isinstance(result, str):
        result = json.loads(result)
    cites = result.get("citations") or []
    return cites[0]["title"] if cites else ""


class Tally:
    """Latencies and outcomes from every client thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.ok = self.wrong = self.errors = 0
        self.samples: list[str] = []  # the first few problems, for the report

    def add(self, seconds: float, outcome: str, detail: str = "") -> None:
        with self.lock:
            self.latencies.append(seconds)
            setattr(self, outcome, getattr(self, outcome) + 1)
            if detail and len(self.samples) < 5:
                self.samples.append(detail)


def client_loop(url: str, index: int, questions, stop_at: float, hard_stop: float,
                tally: Tally) -> None:
    """One client: its own gradio_client, the questions in turn (offset by its index)."""
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
    except Exception as exc:  # noqa: BLE001  (reported, not raised: other clients go on)
        tally.add(0.0, "errors", f"client {index}: cannot connect ({exc})")
        return
    n = index
    while time.monotonic() < stop_at:
        question, expected = questions[n % len(questions)]
        n += 1
        t0 = time.monotonic()
        try:
            job = client.submit(question, 5, api_name="/ask")
            result = job.result(timeout=max(1.0, hard_stop - t0))
        except Exception as exc:  # noqa: BLE001
            tally.add(time.monotonic() - t0, "errors", f"{type(exc).__name__}: {str(exc)[:120]}")
            continue
        got = top_title(result)
        if got == expected:
            tally.add(time.monotonic() - t0, "ok")
        else:
            tally.add(time.monotonic() - t0, "wrong",
                      f"asked for {expected[:50]!r}, got {got[:50]!r}")


def calibrate(url: str, questions) -> tuple[list, list]:
    """Ask each question once, alone: keep those whose top citation is the expected paper
    (the load test checks concurrency, not retrieval quality)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    kept, dropped = [], []
    for question, expected in questions:
        (kept if top_title(client.predict(question, 5, api_name="/ask")) == expected
         else dropped).append((question, expected))
    return kept, dropped


def build_index(data_dir: Path) -> None:
    """Ingest the bundled corpus into data_dir when it holds no papers yet."""
    subprocess.run([sys.executable, "-m", "rag.cli", "ingest", "--bundled", "--data-dir",
                    str(data_dir)], check=True, env=quiet_env(), stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20, help="Concurrent clients (default 20).")
    parser.add_argument("--seconds", type=float, default=60,
                        help="How long the clients keep asking (default 60).")
    parser.add_argument("--grace", type=float, default=30,
                        help="Extra seconds for answers in flight before the hard stop.")
    parser.add_argument("--questions", type=int, default=10, help="Distinct questions (max).")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="Index to serve (default: a temporary index of the bundled corpus).")
    parser.add_argument("--json", dest="json_out", type=Path, default=None,
                        help="Also write the figures to this JSON file.")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 200 or not 0 < args.seconds <= 3600:
        parser.error("--clients must be 1..200 and --seconds 0..3600")

    with tempfile.TemporaryDirectory(prefix="abstracta-load-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        if args.data_dir is None:
            print("Building a temporary index of the bundled corpus...", file=sys.stderr)
            build_index(data_dir)
        port = free_port()
        url = f"http://{HOST}:{port}/"
        ui = start_ui(data_dir, port, Path(tmp) / "ui.log", timeout=300)
        try:
            questions, dropped = calibrate(url, dev_questions(args.questions))
            if not questions:
                print("No question is answered from its paper even alone; nothing to load-test.",
                      file=sys.stderr)
                return 1
            tally = Tally()
            start = time.monotonic()
            stop_at, hard_stop = start + args.seconds, start + args.seconds + args.grace
            threads = [threading.Thread(target=client_loop, daemon=True,
                                        args=(url, i, questions, stop_at, hard_stop, tally))
                       for i in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=max(0.0, hard_stop - time.monotonic()))
            elapsed = time.monotonic() - start
            unfinished = sum(t.is_alive() for t in threads)
        finally:
            stop(ui)

    lat = tally.latencies or [0.0]
    figures = {
        "clients": args.clients, "seconds": round(elapsed, 1), "questions": len(questions),
        "dropped_questions": len(dropped), "requests": len(tally.latencies), "ok": tally.ok,
        "wrong": tally.wrong, "errors": tally.errors, "unfinished_clients": unfinished,
        "throughput_rps": round(len(tally.latencies) / elapsed, 2) if elapsed else 0.0,
        "median_s": round(statistics.median(lat), 3), "p95_s": round(percentile(lat, 95), 3),
        "max_s": round(max(lat), 3),
    }
    width = max(len(k) for k in figures)
    print(f"\nUI load test: {args.clients} clients x {args.seconds:g} s on {HOST}")
    print("-" * (width + 12))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:>9}")
    for sample in tally.samples:
        print(f"  problem: {sample}")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if tally.wrong == tally.errors == unfinished == 0 and tally.ok else 1


if __name__ == "__main__":
    sys.exit(main())
