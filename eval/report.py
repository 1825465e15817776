"""Summaries of a run: metrics with bootstrap intervals, comparison, report.md + chart.

Every aggregate is computed from the per-question records (``per_question.jsonl``),
so a summary, a comparison and a re-analysis of an old run all use one definition.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

N_BOOT = 1000
SEED = 0


@dataclass(frozen=True)
class Spec:
    """One reported metric: how it is aggregated from per-question values."""

    name: str
    section: str
    kind: str  # "mean" | "ratio" | "median" | "p95"
    field: str  # per-question value (numerator for "ratio")
    denom: str = ""  # per-question denominator for "ratio"
    higher_is_better: bool = True
    help: str = ""


SPECS = [
    Spec("hit@1", "retrieval", "mean", "hit@1", help="a gold paper ranked first"),
    Spec("hit@5", "retrieval", "mean", "hit@5", help="a gold paper in the top 5"),
    Spec("recall@5", "retrieval", "mean", "recall@5", help="share of gold papers in the top 5"),
    Spec("recall@10", "retrieval", "mean", "recall@10"),
    Spec("mrr@10", "retrieval", "mean", "mrr@10"),
    Spec("ndcg@10", "retrieval", "mean", "ndcg@10"),
    Spec("citation_precision", "citations", "mean", "citation_precision",
         help="cited papers that are gold (answerable questions with citations)"),
    Spec("citation_recall", "citations", "mean", "citation_recall",
         help="gold papers that are cited"),
    Spec("invented_citation_rate", "citations", "mean", "invented_citation_rate",
         higher_is_better=False, help="cited papers not among the retrieved sources (must be 0)"),
    Spec("invented_number_rate", "citations", "ratio", "invented_numbers", "citation_numbers",
         higher_is_better=False,
         help="[n] the LLM wrote that point to no source / all [n] it wrote (before the check "
              "removed them)"),
    Spec("accuracy", "abstention", "mean", "correct",
         help="LitQA2: correct / all questions (abstaining is not correct)"),
    Spec("precision", "abstention", "ratio", "correct", "answered",
         help="LitQA2: correct / answered questions"),
    Spec("top_citation_accuracy", "abstention", "mean", "top_citation_correct",
         help="answered and the first citation is gold / all"),
    Spec("answer_rate", "abstention", "mean", "answered", help="questions not abstained on"),
    Spec("correct_abstention", "abstention", "mean", "correct_abstention",
         help="unanswerable questions abstained on"),
    Spec("false_abstention", "abstention", "mean", "false_abstention", higher_is_better=False,
         help="answerable questions abstained on"),
    Spec("key_facts", "answer", "mean", "key_facts",
         help="every expected fact string occurs in the answer"),
    Spec("unsupported_rate", "answer", "mean", "unsupported", higher_is_better=False,
         help="answers (not abstentions) with no statement carrying a valid citation"),
    Spec("answer_words", "answer", "mean", "answer_words", higher_is_better=False),
    Spec("latency_ms_median", "latency", "median", "latency_ms", higher_is_better=False),
    Spec("latency_ms_p95", "latency", "p95", "latency_ms", higher_is_better=False),
    Spec("tokens_mean", "tokens", "mean", "tokens", higher_is_better=False,
         help="LLM tokens per question (all turns)"),
]
JUDGE_SPECS = [
    Spec("faithfulness", "judge", "mean", "faithfulness",
         help="claims supported by the sources / all claims"),
    Spec("citation_support", "judge", "mean", "citation_support",
         help="cited claims whose citation supports them"),
]
SPEC_BY_NAME = {s.name: s for s in SPECS + JUDGE_SPECS}
CHART_METRICS = ["hit@1", "hit@5", "recall@10", "ndcg@10", "accuracy", "key_facts",
                 "correct_abstention"]


# --- aggregation ----------------------------------------------------------------------
def _values(records: list[dict], spec: Spec) -> tuple[list, list | None]:
    """Per-question numerator and denominator arrays (None: not applicable)."""
    if spec.section == "judge":
        nums = [r.get("judge", {}).get(spec.field) if r.get("judge", {}).get("status") == "ok"
                else None for r in records]
    else:
        nums = [r["metrics"].get(spec.field) for r in records]
    dens = [r["metrics"].get(spec.denom) for r in records] if spec.kind == "ratio" else None
    return nums, dens


def _aggregate(nums, dens, kind: str, idx):
    """The metric over the questions ``idx`` (a 2-D index array: one row per resample)."""
    import numpy as np

    x = np.array([np.nan if v is None else v for v in nums], dtype=float)[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if kind == "mean":
                return np.nanmean(x, axis=-1)
            if kind == "median":
                return np.nanmedian(x, axis=-1)
            if kind == "p95":
                return np.nanpercentile(x, 95, axis=-1)
            d = np.array([np.nan if v is None else v for v in dens], dtype=float)[idx]
            return np.nansum(x, axis=-1) / np.nansum(d, axis=-1)


def metric_stats(records: list[dict], spec: Spec, n_boot: int = N_BOOT, seed: int = SEED) -> dict:
    """{"value", "n", "ci": [lo, hi]} with a percentile bootstrap 95% interval."""
    import numpy as np

    nums, dens = _values(records, spec)
    present = [i for i, v in enumerate(nums) if v is not None
               and (dens is None or dens[i] is not None)]
    n = int(sum(dens[i] for i in present)) if dens is not None else len(present)  # a ratio
    if not present or n == 0:
        return {"value": None, "n": n, "ci": [None, None]}
    nums = [nums[i] for i in present]
    dens = [dens[i] for i in present] if dens is not None else None
    value = float(_aggregate(nums, dens, spec.kind, np.arange(len(nums))[None, :])[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(nums), size=(n_boot, len(nums)))
    boots = _aggregate(nums, dens, spec.kind, idx)
    boots = boots[~np.isnan(boots)]
    lo, hi = (np.percentile(boots, [2.5, 97.5]) if len(boots) else (math.nan, math.nan))
    return {"value": _r(value), "n": n, "ci": [_r(lo), _r(hi)]}


def _r(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


def _group(records: list[dict], specs: list[Spec]) -> dict:
    out = {}
    for spec in specs:
        stats = metric_stats(records, spec)
        if spec.name in ("tokens_mean", "invented_number_rate") and stats["n"] == 0:
            continue  # no LLM (or no usage reported): nothing to report
        out[spec.name] = stats
    return out


def summarize(records: list[dict], judge_model: str | None = None) -> dict:
    """Overall and by-type statistics of every metric; judge metrics in their own section."""
    types = sorted({r["type"] for r in records})
    summary = {
        "n_questions": len(records),
        "overall": _group(records, SPECS),
        "by_type": {t: _group([r for r in records if r["type"] == t], SPECS) for t in types},
        "counts_by_type": {t: sum(r["type"] == t for r in records) for t in types},
        # LLM answers whose server reported no token usage (llama.cpp's stream does not).
        "usage_not_reported": sum(bool(r.get("raw_reply")) and not r.get("usage")
                                  for r in records),
    }
    if judge_model:
        statuses = [r.get("judge", {}).get("status", "missing") for r in records]
        summary["judge"] = {judge_model: {
            "overall": _group(records, JUDGE_SPECS),
            "by_type": {t: _group([r for r in records if r["type"] == t], JUDGE_SPECS)
                        for t in types},
            "judged": statuses.count("ok"),
            "unparsable": statuses.count("unparsable"),
            "errors": statuses.count("error"),
            "skipped_abstained": statuses.count("skipped"),
        }}
    return summary


def overall_value(summary: dict, name: str) -> float | None:
    """A metric's overall value from a summary (judge metrics too)."""
    if name in summary["overall"]:
        return summary["overall"][name]["value"]
    for judged in summary.get("judge", {}).values():
        if name in judged["overall"]:
            return judged["overall"][name]["value"]
    return None


# --- comparison -----------------------------------------------------------------------
def compare(old: list[dict], new: list[dict], n_boot: int = 2000, seed: int = SEED) -> dict:
    """Each metric's change over the questions both runs share, with a paired bootstrap
    p-value (two-sided), and the questions that flipped."""
    import numpy as np

    old_by = {r["id"]: r for r in old}
    ids = [r["id"] for r in new if r["id"] in old_by]
    a = [old_by[i] for i in ids]
    b = [r for r in new if r["id"] in old_by]
    rng = np.random.default_rng(seed)
    rows = []
    for spec in SPECS + JUDGE_SPECS:
        na, da = _values(a, spec)
        nb, db = _values(b, spec)
        # Pair only questions where both runs have a value.
        keep = [i for i in range(len(ids)) if na[i] is not None and nb[i] is not None
                and (da is None or db is None or (da[i] is not None and db[i] is not None))]
        if not keep:
            continue
        sub = lambda xs, keep=keep: None if xs is None else [xs[i] for i in keep]  # noqa: E731
        full = np.arange(len(keep))[None, :]
        va = float(_aggregate(sub(na), sub(da), spec.kind, full)[0])
        vb = float(_aggregate(sub(nb), sub(db), spec.kind, full)[0])
        bidx = rng.integers(0, len(keep), size=(n_boot, len(keep)))
        diff = (_aggregate(sub(nb), sub(db), spec.kind, bidx)
                - _aggregate(sub(na), sub(da), spec.kind, bidx))
        diff = diff[~np.isnan(diff)]
        if vb == va or not len(diff):
            p = 1.0
        else:
            p = min(1.0, 2 * min(float(np.mean(diff <= 0)), float(np.mean(diff >= 0))))
        rows.append({"metric": spec.name, "old": _r(va), "new": _r(vb), "delta": _r(vb - va),
                     "n": len(keep), "p_value": round(p, 4),
                     "better": None if vb == va else (vb > va) == spec.higher_is_better})
    flips: dict[str, list[str]] = {"hit_to_miss": [], "miss_to_hit": [],
                                   "answered_to_abstained": [], "abstained_to_answered": []}
    for ra, rb in zip(a, b, strict=False):
        ha, hb = ra["metrics"].get("hit@5"), rb["metrics"].get("hit@5")
        if ha == 1 and hb == 0:
            flips["hit_to_miss"].append(rb["id"])
        if ha == 0 and hb == 1:
            flips["miss_to_hit"].append(rb["id"])
        if not ra["abstained"] and rb["abstained"]:
            flips["answered_to_abstained"].append(rb["id"])
        if ra["abstained"] and not rb["abstained"]:
            flips["abstained_to_answered"].append(rb["id"])
    return {"paired_questions": len(ids), "only_old": len(old_by) - len(ids),
            "only_new": len(new) - len(b), "metrics": rows, "flips": flips}


def format_compare(result: dict, old_name: str) -> str:
    lines = [f"Compared with {old_name} over {result['paired_questions']} shared questions"
             f" (paired bootstrap, two-sided p):"]
    for row in result["metrics"]:
        mark = "" if row["better"] is None else (" better" if row["better"] else " worse")
        sig = " *" if row["p_value"] < 0.05 else ""
        lines.append(f"  {row['metric']:<24} {_fmt(row['old']):>9} -> {_fmt(row['new']):>9}  "
                     f"{row['delta']:+.4f}  {_p(row['p_value'])}{sig}{mark}")
    if result["only_old"] or result["only_new"]:
        lines.append(f"  (questions only in the old run: {result['only_old']}, "
                     f"only in this run: {result['only_new']})")
    labels = {"hit_to_miss": "hit@5 -> miss", "miss_to_hit": "miss -> hit@5",
              "answered_to_abstained": "answered -> abstained",
              "abstained_to_answered": "abstained -> answered"}
    for key, label in labels.items():
        ids = result["flips"][key]
        lines.append(f"  {label}: {len(ids)}" + (f" ({', '.join(ids)})" if ids else ""))
    return "\n".join(lines)


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3f}"


# --- files ----------------------------------------------------------------------------
def read_records(folder: Path) -> list[dict]:
    path = Path(folder) / "per_question.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def write_records(folder: Path, records: list[dict]) -> None:
    with open(Path(folder) / "per_question.jsonl", "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_chart(path: Path, summary: dict) -> None:
    """Grouped bars: the main metrics by question type (and overall)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = [("overall", summary["overall"])] + list(summary["by_type"].items())
    width = 0.8 / len(CHART_METRICS)
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(groups) + 3), 4.5))
    x = np.arange(len(groups))
    for i, name in enumerate(CHART_METRICS):
        vals = [g.get(name, {}).get("value") for _, g in groups]
        ax.bar(x + (i - (len(CHART_METRICS) - 1) / 2) * width,
               [np.nan if v is None else v for v in vals], width, label=name)
    ax.set_xticks(x, [f"{name}\n(n={summary['counts_by_type'].get(name, summary['n_questions'])})"
                      for name, _ in groups])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title("Metrics by question type (missing bar: not applicable)")
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cell(stats: dict | None) -> str:
    if not stats or stats["value"] is None:
        return "–"
    lo, hi = stats["ci"]
    ci = f" [{_fmt(lo)}, {_fmt(hi)}]" if lo is not None else ""
    return f"{_fmt(stats['value'])}{ci}"


def markdown(summary: dict, config: dict, compare_text: str | None = None) -> str:
    """report.md: the overall table, the by-type table, the judge section and the chart."""
    types = list(summary["by_type"])
    out = [f"# Eval run {config.get('name', '')}", "",
           f"- dataset: `{config.get('dataset')}` ({summary['n_questions']} questions)",
           f"- answerer: {config.get('answerer')}; embedding model: "
           f"{config.get('embedding_model')}; k = {config.get('k')}",
           f"- corpus: {config.get('corpus', {}).get('papers')} papers, fingerprint "
           f"`{config.get('corpus', {}).get('fingerprint', '')[:16]}`",
           f"- code version: {config.get('code_version')}", "",
           "## Overall", "", "| metric | value [95% CI] | n | meaning |", "|---|---|---|---|"]
    for name, stats in summary["overall"].items():
        out.append(f"| {name} | {_cell(stats)} | {stats['n']} | {SPEC_BY_NAME[name].help} |")
    if summary.get("usage_not_reported"):
        out += ["", f"Token usage: not reported by the server for "
                    f"{summary['usage_not_reported']} answers (tokens_mean leaves them out)."]
    out += ["", "## By question type", "",
            "| metric | " + " | ".join(f"{t} (n={summary['counts_by_type'][t]})"
                                       for t in types) + " |",
            "|---|" + "---|" * len(types)]
    for name in summary["overall"]:
        out.append(f"| {name} | " + " | ".join(_cell(summary["by_type"][t].get(name))
                                               for t in types) + " |")
    out += ["", "![metrics by question type](metrics_by_type.png)", ""]
    for model, judged in summary.get("judge", {}).items():
        out += [f"## LLM judge: {model}", "",
                f"Judged {judged['judged']} answers; unparsable replies: "
                f"{judged['unparsable']}; errors: {judged['errors']}; abstentions skipped: "
                f"{judged['skipped_abstained']}.", "",
                "| metric | value [95% CI] | n |", "|---|---|---|"]
        for name, stats in judged["overall"].items():
            out.append(f"| {name} | {_cell(stats)} | {stats['n']} |")
        out.append("")
    if compare_text:
        out += ["## Comparison", "", "```", compare_text, "```", ""]
    out += ["Intervals: percentile bootstrap over questions (1000 resamples). Retrieval metrics "
            "exclude unanswerable questions; accuracy/precision follow LitQA2 (abstaining is "
            "neither right nor wrong; answering an unanswerable question is wrong).", ""]
    return "\n".join(out)


def print_summary(summary: dict) -> None:
    """The overall and by-type table on stdout."""
    from rich.console import Console
    from rich.table import Table

    types = list(summary["by_type"])
    table = Table(title=f"Eval summary ({summary['n_questions']} questions)")
    table.add_column("metric", no_wrap=True)
    table.add_column("overall [95% CI]", justify="right", no_wrap=True)
    for t in types:
        table.add_column(f"{t}\n(n={summary['counts_by_type'][t]})", justify="right")
    for name, stats in summary["overall"].items():
        table.add_row(name, _cell(stats),
                      *[_fmt((summary["by_type"][t].get(name) or {}).get("value"))
                        for t in types])
    for judged in summary.get("judge", {}).values():
        for name, stats in judged["overall"].items():
            table.add_row(f"judge:{name}", _cell(stats),
                          *[_fmt((judged["by_type"][t].get(name) or {}).get("value"))
                            for t in types])
        table.add_row("judge:unparsable", str(judged["unparsable"]), *[""] * len(types))
        table.add_row("judge:errors", str(judged["errors"]), *[""] * len(types))
    Console(width=max(120, 52 + 14 * len(types))).print(table)
    if summary.get("usage_not_reported"):
        Console().print(f"Token usage not reported by the server for "
                        f"{summary['usage_not_reported']} answers.", markup=False)
