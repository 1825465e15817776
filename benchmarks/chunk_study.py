"""Chunk overlap and title repetition (MiniLM): what each costs and what it buys.

For each variant of ``chunk_overlap`` and ``chunk_title`` (rag/settings.py):

- tokens: the bundled corpus's chunk tokens as MiniLM embeds them ([CLS]/[SEP]
  included), and their ratio to embedding each abstract whole (title + abstract);
- ingest: wall seconds of ``Pipeline.ingest`` of the bundled corpus into a fresh data
  dir (``/tmp/<prefix>-<variant>``; model loaded before the clock starts);
- quality: ``ask eval`` (offline) of the held-out test split on that index, and the
  issue-11 bars of ``python -m eval.bars`` for the run.

The relevance model is fitted on the tune split per embedder, on the default chunks.
``--refit`` refits it on each variant's own index (``python -m eval.calibrate --out``
into the data dir) and points the eval at that file, so a variant is not judged with a
model fitted to other chunks; without it every variant uses rag/calibration/minilm.json.
Nothing in the repository is written: runs go to ``/tmp/<prefix>-runs``.

    python benchmarks/chunk_study.py                       # every variant, no refit
    python benchmarks/chunk_study.py --refit --only base,title-first
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = ROOT / "eval" / "datasets" / "test.jsonl"

VARIANTS: dict[str, dict] = {  # name -> settings overrides (the default first)
    "base": {},
    "overlap-12": {"chunk_overlap": 12},
    "overlap-0": {"chunk_overlap": 0},
    "title-first": {"chunk_title": "first"},
    "title-short": {"chunk_title": "short"},
    "ov0-title-short": {"chunk_overlap": 0, "chunk_title": "short"},
}

# Run eval with the calibration files of a scratch folder (rag.retrieve.relevance reads the
# module-level CALIBRATION_DIR at call time; the repository's file stays untouched).
_EVAL_WITH_CALIBRATION = (
    "import sys; from pathlib import Path; import rag.retrieve.relevance as r; "
    "r.CALIBRATION_DIR = Path(sys.argv[1]); from eval.cli import eval_command; "
    "eval_command.main(args=sys.argv[2:], prog_name='ask eval')"
)


def _settings(data_dir: Path | None, overrides: dict):
    from rag import load_settings

    return load_settings(data_dir=data_dir, embedder="minilm", auto_ingest_bundled=False,
                         **overrides)


def token_cost(overrides: dict) -> tuple[int, int, int]:
    """(chunks, chunk tokens, whole-abstract tokens) of the bundled corpus."""
    from embed import token_counts, whole_texts

    from rag import BUNDLED_CORPUS, StoredPaper, expand_paths, load_path, normalize_title
    from rag.chunk import make_chunker

    papers: dict[str, StoredPaper] = {}
    for f in expand_paths([BUNDLED_CORPUS]):
        for p in load_path(f).papers:
            key = normalize_title(p.title)
            papers.setdefault(key, StoredPaper(key, p.title, p.abstract, (), ()))
    chunker = make_chunker(_settings(None, overrides))
    texts = [c.text for p in papers.values() for c in chunker(p)]
    return (len(texts), int(token_counts(texts).sum()),
            int(token_counts(whole_texts(BUNDLED_CORPUS)).sum()))


def ingest(data_dir: Path, overrides: dict) -> float:
    from rag import BUNDLED_CORPUS, Pipeline

    shutil.rmtree(data_dir, ignore_errors=True)
    pipeline = Pipeline(_settings(data_dir, overrides))
    _ = pipeline.embedder  # loaded before the clock starts
    t0 = time.perf_counter()
    pipeline.ingest([BUNDLED_CORPUS])
    return time.perf_counter() - t0


def _env(data_dir: Path, overrides: dict) -> dict:
    env = {**os.environ, "ABSTRACTA_DATA_DIR": str(data_dir), "ABSTRACTA_EMBEDDER": "minilm",
           "ABSTRACTA_AUTO_INGEST_BUNDLED": "false"}
    env.update({f"ABSTRACTA_{k.upper()}": str(v) for k, v in overrides.items()})
    return env


def evaluate(name: str, data_dir: Path, overrides: dict, runs: Path, refit: bool) -> dict:
    """The bar metrics of an offline eval of the test split on ``data_dir``."""
    from eval.harness import load_dataset
    from eval.metrics import bar_metrics

    env = _env(data_dir, overrides)
    args = ["--dataset", str(TEST), "--name", name, "--runs-dir", str(runs), "--offline"]
    if refit:
        calib = data_dir / "calibration"
        subprocess.run([sys.executable, "-m", "eval.calibrate", "--data-dir", str(data_dir),
                        "--out", str(calib / "minilm.json")], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        cmd = [sys.executable, "-c", _EVAL_WITH_CALIBRATION, str(calib), *args]
    else:
        cmd = [sys.executable, "-m", "rag.cli", "eval", *args]
    shutil.rmtree(runs / name, ignore_errors=True)
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    records = [json.loads(line) for line in
               (runs / name / "per_question.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    info = {q.id: {"subtype": q.subtype, "switch": q.switch} for q in load_dataset(TEST)}
    return {k: v["value"] for k, v in bar_metrics(records, info).items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated variant names")
    parser.add_argument("--refit", action="store_true",
                        help="refit the relevance model on each variant's index (tune split)")
    parser.add_argument("--prefix", default="chunk-study", help="scratch name under /tmp")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(VARIANTS)
    runs = Path("/tmp") / f"{args.prefix}-runs"
    from eval.metrics import BARS

    print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; calibration: "
          f"{'refit per variant' if args.refit else 'rag/calibration/minilm.json'}")
    short = {m: m.replace("followup_", "fu_").replace("unanswerable_", "unans_")
             .replace("invented_citation_rate", "invented") for m in BARS}
    print(f"{'variant':16} {'chunks':>6} {'tokens':>7} {'x whole':>7} {'ingest s':>8}  "
          + " ".join(f"{short[m]:>10}" for m in BARS))
    for name in names:
        overrides = VARIANTS[name]
        data_dir = Path("/tmp") / f"{args.prefix}-{name}"
        chunks, tokens, whole = token_cost(overrides)
        wall = ingest(data_dir, overrides)
        bars = evaluate(name, data_dir, overrides, runs, args.refit)
        cells = " ".join(f"{'-' if bars[m] is None else f'{bars[m]:.3f}':>10}" for m in BARS)
        print(f"{name:16} {chunks:6d} {tokens:7d} {tokens / whole:7.2f} {wall:8.1f}  {cells}",
              flush=True)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
