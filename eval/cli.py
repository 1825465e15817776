"""``ask eval``: run a question set through the pipeline, score it, write a run folder.

Registered with ``ask`` as an entry point (pyproject.toml's ``abstracta.commands``
group). Abstracta errors propagate to ``rag.cli.main``, which prints them as one line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from rag.console import echo

EXIT_FAIL_UNDER = 3


def _floor(value: str, option: str = "--fail-under") -> tuple[str, float]:
    """'hit@5=0.9' -> ('hit@5', 0.9), checking the metric name."""
    from eval.report import SPEC_BY_NAME

    name, sep, number = value.partition("=")
    name = name.strip()
    if not sep or name not in SPEC_BY_NAME:
        raise click.BadParameter(
            f"{value!r}: expected METRIC=VALUE with METRIC one of {', '.join(SPEC_BY_NAME)}.",
            param_hint=option)
    try:
        return name, float(number)
    except ValueError:
        raise click.BadParameter(f"{value!r}: {number!r} is not a number.",
                                 param_hint=option) from None


def _select(harness, questions, types: str | None, limit: int | None):
    """--types and --limit applied; an unknown type is a usage error naming the known ones."""
    wanted = tuple(t.strip() for t in (types or "").split(",") if t.strip())
    known = sorted({q.type for q in questions})
    unknown = [t for t in wanted if t not in known]
    if unknown:
        raise click.BadParameter(f"no question of type {', '.join(unknown)} in the dataset; "
                                 f"its types: {', '.join(known)}.", param_hint="--types")
    return harness.select(questions, types=wanted, limit=limit)


def _resolve_run(ref: str, runs_dir: Path) -> Path:
    """A run folder given as a path or as a run name under the runs dir."""
    for candidate in (Path(ref), runs_dir / ref):
        if (candidate / "per_question.jsonl").is_file():
            return candidate
    raise click.BadParameter(f"{ref!r} is neither a run folder nor a run name in {runs_dir}.",
                             param_hint="--compare")


def _run_folder(runs_dir: Path, name: str | None) -> Path:
    if name:
        if "/" in name or name.startswith("."):
            raise click.BadParameter("a run name is a plain folder name.", param_hint="--name")
        folder = runs_dir / name
        if folder.exists():
            raise click.BadParameter(f"run {name!r} already exists in {runs_dir}; pick another "
                                     "name or delete it.", param_hint="--name")
        return folder
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, n = runs_dir / stamp, 1
    while folder.exists():
        n += 1
        folder = runs_dir / f"{stamp}-{n}"
    return folder


def code_version() -> str:
    """`git describe` of the source tree when there is one, else the package version."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    root = Path(__file__).resolve().parents[1]
    if (root / ".git").exists():
        try:
            out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty",
                                  "--tags"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        return version("abstracta")
    except PackageNotFoundError:
        return "unknown"


LIBRARIES = ("abstracta", "chromadb", "llama-index-core", "onnxruntime", "tokenizers",
             "wordllama", "openai", "numpy", "matplotlib")


def library_versions(packages: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    """Python's version and each package's installed version (None: not installed), for a
    run's record (``ask eval`` and benchmarks/run.py)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


@click.command(name="eval", context_settings={"help_option_names": ["-h", "--help"]},
               short_help="Score Abstracta on a question set (metrics, run folder, "
                          "regressions). `ask eval --help`.")
@click.option(
    "--dataset",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Question set (JSON Lines). Default: the shipped held-out split eval/datasets/test.jsonl.",
)
@click.option("--name", default=None, help="Run folder name (default: a timestamp).")
@click.option("-k", "--k", "k", type=click.IntRange(1, 100), default=None,
              help="Papers the answerer gets (default: the top_k setting). Retrieval metrics "
                   "always rank max(10, k) papers.")
@click.option("--judge", is_flag=True,
              help="Also score faithfulness and citation support with the LLM as a judge.")
@click.option("--compare", "compare_to", default=None, metavar="RUN_OR_PATH",
              help="Show each metric's change against an earlier run (name or folder).")
@click.option("--fail-under", "floors", multiple=True, metavar="METRIC=VALUE",
              help="Exit with code 3 when an overall metric is below VALUE (repeatable).")
@click.option("--fail-over", "ceilings", multiple=True, metavar="METRIC=VALUE",
              help="Exit with code 3 when an overall metric is above VALUE (for metrics where "
                   "lower is better: invented_citation_rate, false_abstention, latency).")
@click.option("--allow-missing", is_flag=True,
              help="Run even when gold papers are not in the index (they count as not found).")
@click.option("--llm/--offline", "use_llm", default=None,
              help="Force the LLM answerer or the offline one (default: LLM when configured).")
@click.option("--limit", type=click.IntRange(1), default=None, metavar="N",
              help="Run at most N questions, stratified by type (a slow local model on a "
                   "subset): each type keeps its share, the first questions of each type.")
@click.option("--types", "types", default=None, metavar="TYPE,...",
              help="Run only these question types (comma-separated, e.g. lookup,followup).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Index folder (env ABSTRACTA_DATA_DIR).")
@click.option("--runs-dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("eval/runs"), show_default=True, help="Where run folders go.")
def eval_command(dataset, name, k, judge, compare_to, floors, ceilings, allow_missing, use_llm,
                 limit, types, data_dir, runs_dir):
    """Score Abstracta on a question set and write a run folder.

    \b
    ask eval                                   the shipped test split, offline or with the LLM
    ask eval --dataset my.jsonl --name base    a named run in eval/runs/base/
    ask eval --compare base --fail-under hit@5=0.9

    The run folder holds config.json, per_question.jsonl, summary.json, report.md
    and metrics_by_type.png.
    """
    from eval import harness, report
    from rag import Pipeline, load_settings
    from rag.console import auto_ingest, progress_bar

    parsed_floors = [_floor(f) for f in floors]
    parsed_ceilings = [_floor(c, "--fail-over") for c in ceilings]
    runs_dir = Path(runs_dir)
    old_folder = _resolve_run(compare_to, runs_dir) if compare_to else None
    folder = _run_folder(runs_dir, name)
    dataset = dataset or harness.DEFAULT_DATASET
    questions = _select(harness, harness.load_dataset(dataset), types, limit)

    settings = load_settings(data_dir=data_dir)
    use_llm = settings.use_llm if use_llm is None else use_llm
    if (use_llm or judge) and not settings.llm_configured:
        raise click.UsageError(("--judge" if judge else "--llm") + " needs an LLM: set "
                               "OPENAI_API_KEY or ABSTRACTA_OPENAI_BASE_URL.")
    pipeline = Pipeline(settings)
    auto_ingest(pipeline)

    index = harness.build_gold_index(pipeline)
    missing = _check_gold(harness, questions, index, dataset, allow_missing)

    judge_obj = _judge(settings) if judge else None
    k = k or settings.top_k
    update, bar = progress_bar("Evaluating", unit="questions")
    with bar:
        records = harness.run_all(pipeline, questions, index, k=k, use_llm=use_llm,
                                  judge=judge_obj, progress=update)

    summary = report.summarize(records, judge_obj.model if judge_obj else None)
    config = {
        "name": folder.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": str(dataset), "n_questions": len(questions), "k": k,
        "limit": limit, "types": types, **_run_config(pipeline, k, use_llm, judge_obj),
        "corpus": {"papers": len(index.titles), "fingerprint": index.fingerprint},
        "gold_missing": [{"id": q.id, "gold": t} for q, t in missing],
    }
    compare_text = _compare_text(report, old_folder, records) if old_folder else None
    _write_run(report, folder, config, records, summary, compare_text)
    report.print_summary(summary)
    if compare_text:
        click.echo("\n" + compare_text)
    echo(f"\nRun folder: {folder}")
    _gate(report, summary, parsed_floors, parsed_ceilings)


def _judge(settings):
    """The LLM judge of ``--judge`` (imported only then: it loads the OpenAI client)."""
    from eval.judge import Judge

    return Judge(settings)


def _compare_text(report, old_folder: Path, records) -> str:
    """Each metric's change against the earlier run in ``old_folder``."""
    comparison = report.compare(report.read_records(old_folder), records)
    return report.format_compare(comparison, str(old_folder))


def _run_config(pipeline, k: int, use_llm: bool, judge_obj) -> dict:
    """What produced the run: depths, code, answerer, judge, models, settings, libraries."""
    settings = pipeline.settings
    return {
        "retrieval_k": max(10, k), "code_version": code_version(),
        "answerer": f"llm:{settings.llm_model}" if use_llm else "offline",
        "judge_model": judge_obj.model if judge_obj else None,
        "embedding_model": pipeline.embedder_name(),
        "settings": settings.public_dict(),
        "libraries": library_versions(),
    }


def _check_gold(harness, questions, index, dataset, allow_missing: bool) -> list:
    """The (question, gold title) pairs whose paper is not in the index, each said on
    stderr; a usage error unless ``--allow-missing``."""
    missing = harness.missing_gold(questions, index)
    for q, title in missing:
        echo(f"Gold paper not in the index: {q.id}: {title!r}", err=True)
    if missing and not allow_missing:
        raise click.ClickException(
            f"{len(missing)} gold paper(s) of {dataset} are not in the index "
            f"({len(index.titles)} papers); ingest them or pass --allow-missing.")
    return missing


def _write_run(report, folder: Path, config: dict, records, summary: dict,
               compare_text: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=False)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    report.write_records(folder, records)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    report.write_chart(folder / "metrics_by_type.png", summary)
    (folder / "report.md").write_text(report.markdown(summary, config, compare_text),
                                      encoding="utf-8")


def _gate(report, summary: dict, parsed_floors, parsed_ceilings) -> None:
    """Exit with EXIT_FAIL_UNDER when an overall metric is under its floor or over its
    ceiling (a missing value fails too)."""
    failed = []
    for metric, floor in parsed_floors:
        value = report.overall_value(summary, metric)
        if value is None or value < floor:
            failed.append(f"{metric} = {'n/a' if value is None else f'{value:.4f}'} "
                          f"is below {floor}")
    for metric, ceiling in parsed_ceilings:
        value = report.overall_value(summary, metric)
        if value is None or value > ceiling:
            failed.append(f"{metric} = {'n/a' if value is None else f'{value:.4f}'} "
                          f"is above {ceiling}")
    if failed:
        click.echo("FAILED: " + "; ".join(failed), err=True)
        raise SystemExit(EXIT_FAIL_UNDER)
