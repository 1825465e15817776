"""Fit the relevance model (and check the retrieval depths) on the ``tune`` split.

    python -m eval.calibrate                       # tune split, the embedder in the settings
    ABSTRACTA_EMBEDDER=wordllama python -m eval.calibrate --data-dir /tmp/wl
    python -m eval.calibrate --dry-run             # print, write nothing

For every question (lookups, details, multi-paper, unanswerable, and each turn of a
follow-up that has its own gold list), the retriever's candidates are collected as
the search makes them (``rag.retrieve.candidates``) and the first ``rerank_depth``
papers are described by :func:`rag.retrieve.features`. A logistic regression
(L2-regularized, fitted by Newton's method on standardized features) learns
P(paper is gold | features). The abstention cut is then chosen on the same tune
questions: the highest cut at which at most ``--max-false-abstention`` of the
answerable questions have no shown paper above it. The intercept is shifted so that
this cut is relevance 0.5, the ``abstain_threshold`` default: a paper at 0.5 or more
is one the answerer may answer from.

Writes ``rag/calibration/<embedder>.json``, read by :func:`rag.retrieve.load_calibration`.
Fit on ``tune`` only; measure on ``test`` with ``ask eval --dataset eval/datasets/test.jsonl``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_TUNE = Path(__file__).parent / "datasets" / "tune.jsonl"
MAX_FALSE_ABSTENTION = 0.03
L2 = 1.0
CUT = 0.5  # the relevance the fitted cut is mapped to (Settings.abstain_threshold)


# --- the questions ----------------------------------------------------------------------

def examples(questions) -> list[tuple[str, str, tuple[str, ...]]]:
    """(id, question text, gold titles) to fit on: every standalone question, and each
    follow-up turn that has its own gold list (``turn_gold_titles``)."""
    out = []
    for q in questions:
        if q.turns:
            for i, turn in enumerate(q.turns + (q.question,)):
                # Only the first turn stands alone; later ones are rewritten by the chat.
                if i == 0 and q.turn_gold_titles:
                    out.append((f"{q.id}#1", turn, tuple(q.turn_gold_titles[0])))
            continue
        out.append((q.id, q.question, tuple(q.gold_titles)))
    return out


def collect(pipeline, items, settings) -> list[dict]:
    """Per question: the candidate papers' features, gold flags and title matches."""
    from rag.identity import normalize_title
    from rag.retrieve import candidates, score_papers

    rows = []
    store, embedder = pipeline.store, pipeline.embedder
    for qid, text, gold_titles in items:
        gold = {normalize_title(t) for t in gold_titles}
        query, rankings, _, order = candidates(text, settings, store, embedder)
        scored = score_papers(query, order[:settings.rerank_depth], rankings, settings, store)
        rows.append({
            "id": qid, "answerable": bool(gold), "n_gold": len(gold),
            "papers": [s.hit.paper.paper_id for s in scored],
            "gold": [normalize_title(s.hit.paper.title) in gold for s in scored],
            "title_match": [s.title_match for s in scored],
            "features": [s.features for s in scored],
        })
    return rows


# --- the model --------------------------------------------------------------------------

def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = L2, iters: int = 50):
    """Coefficients and intercept of an L2-regularized logistic regression.

    Newton's method on standardized columns (so one penalty suits every feature),
    mapped back to the raw scale at the end: z = intercept + X @ coef.
    """
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd[sd == 0] = 1.0
    Z = np.hstack([np.ones((len(X), 1)), (X - mu) / sd])
    w = np.zeros(Z.shape[1])
    penalty = np.full(Z.shape[1], l2)
    penalty[0] = 0.0  # the intercept is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ w, -60, 60)))
        grad = Z.T @ (p - y) + penalty * w
        hess = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    coef = w[1:] / sd
    return coef, float(w[0] - np.sum(coef * mu))


def matrix(rows, names) -> tuple[np.ndarray, np.ndarray]:
    X = np.array([[f[n] for n in names] for r in rows for f in r["features"]], dtype=float)
    y = np.array([g for r in rows for g in r["gold"]], dtype=float)
    return X, y


def scores_of(row, names, coef, intercept) -> list[float]:
    return [float(intercept + sum(c * f[n] for n, c in zip(names, coef))) for f in row["features"]]


def order(row, z) -> list[int]:
    """The shown order: a whole-title match first, then by relevance (as rag.retrieve)."""
    return sorted(range(len(z)), key=lambda i: (not row["title_match"][i], -z[i], i))


def evaluate(rows, names, coef, intercept, top_k: int) -> dict:
    """hit@1, MRR@10 and recall@10 over the answerable rows, and each row's best z."""
    hit1, mrr, rec, best = [], [], [], []
    for row in rows:
        z = scores_of(row, names, coef, intercept)
        ranked = order(row, z)
        best.append(max((z[i] for i in ranked[:top_k]), default=-60.0))
        if not row["answerable"]:
            continue
        gold = [row["gold"][i] for i in ranked]
        hit1.append(1.0 if gold[:1] == [True] else 0.0)
        first = next((i for i, g in enumerate(gold[:10]) if g), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
        rec.append(sum(gold[:10]) / max(row["n_gold"], 1))
    return {"hit@1": float(np.mean(hit1)), "mrr@10": float(np.mean(mrr)),
            "recall@10": float(np.mean(rec)), "best_z": best}


def choose_cut(rows, best_z, max_false: float) -> dict:
    """The highest z cut with false abstention <= max_false on the answerable rows."""
    ans = sorted(z for r, z in zip(rows, best_z) if r["answerable"])
    una = [z for r, z in zip(rows, best_z) if not r["answerable"]]
    allowed = int(math.floor(max_false * len(ans)))
    # Abstain when best z < cut: the cut may sit just above the `allowed` lowest scores.
    cut = ans[allowed] - 1e-6 if ans else 0.0
    false = sum(z < cut for z in ans) / len(ans) if ans else 0.0
    correct = sum(z < cut for z in una) / len(una) if una else None
    return {"z_cut": cut, "false_abstention": false, "correct_abstention": correct,
            "answerable": len(ans), "unanswerable": len(una)}


# --- the run ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_TUNE)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--max-false-abstention", type=float, default=MAX_FALSE_ABSTENTION)
    parser.add_argument("--out", type=Path, default=None,
                        help="Calibration file (default rag/calibration/<embedder>.json).")
    parser.add_argument("--dry-run", action="store_true", help="Print the fit; write nothing.")
    parser.add_argument("--grid", action="store_true",
                        help="Also compare candidate depths and fusion weights (slower).")
    parser.add_argument("--followup-only", action="store_true",
                        help="Refit only the follow-up rule, keeping the relevance model.")
    args = parser.parse_args(argv)

    from rag.pipeline import Pipeline
    from rag.retrieve import CALIBRATION_DIR, FEATURES
    from rag.settings import load_settings

    from eval.harness import load_dataset

    settings = load_settings(data_dir=args.data_dir)
    if settings.embedder == "openai":
        print("Calibrating the openai embedder is not supported offline.", file=sys.stderr)
        return 2
    pipeline = Pipeline(settings)
    pipeline.ensure_corpus()
    questions = load_dataset(args.dataset)
    if args.followup_only:
        out = args.out or CALIBRATION_DIR / f"{settings.embedder}.json"
        if not out.exists():
            print(f"{out} does not exist: run without --followup-only first.", file=sys.stderr)
            return 2
        add_followup(pipeline, questions, settings, out)
        return 0
    items = examples(questions)
    t0 = time.perf_counter()
    rows = collect(pipeline, items, settings)
    names = list(FEATURES)
    X, y = matrix(rows, names)
    coef, intercept = fit_logistic(X, y)
    result = evaluate(rows, names, coef, intercept, settings.top_k)
    cut = choose_cut(rows, result["best_z"], args.max_false_abstention)
    # Shift so that the chosen cut is relevance CUT: z' = z - z_cut + logit(CUT).
    shift = -cut["z_cut"] + math.log(CUT / (1 - CUT))
    print(f"{len(items)} questions ({cut['answerable']} answerable), {len(y)} candidate rows, "
          f"{int(y.sum())} gold; {time.perf_counter() - t0:.1f} s")
    for n, c in zip(names, coef):
        print(f"  {n:15s} {c:+8.3f}")
    print(f"  {'intercept':15s} {intercept + shift:+8.3f}  (fitted {intercept:+.3f}, "
          f"shifted so the cut is {CUT})")
    print(f"tune: hit@1 {result['hit@1']:.3f}  mrr@10 {result['mrr@10']:.3f}  "
          f"recall@10 {result['recall@10']:.3f}  false abstention {cut['false_abstention']:.3f}  "
          f"abstention on unanswerable {cut['correct_abstention']}")
    if args.grid:
        grid(pipeline, items, settings, names, coef, intercept)
    if args.dry_run:
        return 0
    data = {
        "embedder": settings.embedder,
        "embedding_model": pipeline.embedder.name,
        "fitted_on": {"dataset": args.dataset.name,
                      "sha256": hashlib.sha256(args.dataset.read_bytes()).hexdigest(),
                      "questions": len(items), "rows": int(len(y)),
                      "date": time.strftime("%Y-%m-%d")},
        "relevance": {
            "features": names,
            "coef": {n: round(float(c), 5) for n, c in zip(names, coef)},
            "intercept": round(intercept + shift, 5),
            "cut": CUT,
            "note": "relevance = 1/(1+exp(-(intercept + sum coef*feature))); the intercept is "
                    f"shifted so that {CUT} is the cut that keeps false abstention on the tune "
                    f"split at or under {args.max_false_abstention}",
        },
        "tune": {"hit@1": round(result["hit@1"], 4), "mrr@10": round(result["mrr@10"], 4),
                 "recall@10": round(result["recall@10"], 4),
                 "false_abstention": round(cut["false_abstention"], 4),
                 "correct_abstention": None if cut["correct_abstention"] is None
                 else round(cut["correct_abstention"], 4)},
        "settings": {"candidates": settings.candidates, "rerank_depth": settings.rerank_depth,
                     "rrf_k": settings.rrf_k, "dense_weight": settings.dense_weight,
                     "lexical_weight": settings.lexical_weight, "top_k": settings.top_k},
    }
    out = args.out or CALIBRATION_DIR / f"{settings.embedder}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {out}")
    add_followup(pipeline, questions, settings, out)
    return 0


def grid(pipeline, items, settings, names, coef, intercept) -> None:
    """hit@1 / MRR@10 / recall@10 on tune for other depths and fusion weights (the model
    fitted above held fixed): how the documented defaults were chosen."""
    print("candidates  lexical_weight  rerank_depth   hit@1  mrr@10  recall@10")
    for cand in (60, 100, 200):
        for lw in (0.5, 1.0, 1.5):
            for depth in (10, 20, 40):
                s = settings.model_copy(update={"candidates": cand, "lexical_weight": lw,
                                                "rerank_depth": depth})
                r = evaluate(collect(pipeline, items, s), names, coef, intercept, s.top_k)
                print(f"{cand:10d}  {lw:14.2f}  {depth:12d}   {r['hit@1']:.3f}   "
                      f"{r['mrr@10']:.3f}   {r['recall@10']:.3f}")


# --- follow-ups (rag.chat.FollowupRule) -------------------------------------------------

def add_followup(pipeline, questions, settings, out: Path) -> None:
    """Fit the follow-up rule with the relevance model just written in force, and add it
    to the calibration file as ``"followup"`` (read by rag.chat.load_followup_rule)."""
    from rag.chat import load_followup_rule
    from rag.retrieve import load_calibration

    load_calibration.cache_clear()
    load_followup_rule.cache_clear()
    t0 = time.perf_counter()
    rule = fit_followup(followup_examples(pipeline, questions, settings.top_k))
    data = json.loads(out.read_text(encoding="utf-8"))
    data["followup"] = rule
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    load_followup_rule.cache_clear()
    print(f"follow-up rule ({rule['informative_rows']} informative turns of {rule['rows']}; "
          f"{time.perf_counter() - t0:.0f} s): "
          + ", ".join(f"{n} {c:+.2f}" for n, c in rule["coef"].items())
          + f", intercept {rule['intercept']:+.2f}; top paper right on tune: "
          + "; ".join(f"{kind} {r['rule']:.3f} (alone {r['always_alone']:.3f}, joined "
                      f"{r['always_joined']:.3f})" for kind, r in rule["tune_top_paper_right"].items()))


def followup_examples(pipeline, questions, k: int, seed: int = 11) -> list[dict]:
    """Turns that could lean on a previous one, with their evidence (rag.chat.evidence)
    and whether searching alone / with the previous subject puts a gold paper first.

    Two kinds: every later turn of the conversations that has its own gold list (the
    earlier turns answered as the chat answers them), and every standalone answerable
    question asked right after another, unrelated one (a fixed shuffle): those must not
    be glued to the previous subject.
    """
    import random

    from rag.chat import Conversation, subject
    from rag.identity import normalize_title

    def row(kind, qid, text, gold, about):
        feats, alone, joined, _ = pipeline.followup_evidence(text, about, k)
        gold = {normalize_title(t) for t in gold}
        return {"kind": kind, "id": qid, "features": feats,
                "alone": bool(alone) and normalize_title(alone[0].paper.title) in gold,
                "joined": bool(joined) and normalize_title(joined[0].paper.title) in gold}

    rows = []
    for q in questions:
        if not q.turns:
            continue
        turns = q.turns + (q.question,)
        golds = q.turn_gold_titles or ((),) * len(q.turns) + (q.gold_titles,)
        conversation = Conversation()
        for i, (text, gold) in enumerate(zip(turns, golds)):
            about = subject(conversation)
            if i and about is not None and gold:
                rows.append(row("conversation", f"{q.id}#{i + 1}", text, gold, about))
            pipeline.answer(text, k=k, conversation=conversation, use_llm=False)
    alone = [q for q in questions if not q.turns and q.gold_titles]
    before = alone[:]
    random.Random(seed).shuffle(before)
    for q, prev in zip(alone, before[1:] + before[:1]):
        if prev.id == q.id:
            continue
        conversation = Conversation()
        pipeline.answer(prev.question, k=k, conversation=conversation, use_llm=False)
        about = subject(conversation)
        if about is not None:
            rows.append(row("new question", f"{q.id}<-{prev.id}", q.question, q.gold_titles,
                            about))
    return rows


def fit_followup(rows: list[dict]) -> dict:
    """The follow-up rule: a logistic regression, on the rows where only one of the two
    searches puts a gold paper first, of "the search with the subject is the right one"."""
    from rag.chat import FEATURES

    informative = [r for r in rows if r["alone"] != r["joined"]]
    X = np.array([[r["features"][n] for n in FEATURES] for r in informative], dtype=float)
    y = np.array([1.0 if r["joined"] else 0.0 for r in informative])
    coef, intercept = fit_logistic(X, y)

    def right(r, follow):
        return r["joined"] if follow else r["alone"]

    def z(r):
        return intercept + sum(c * r["features"][n] for n, c in zip(FEATURES, coef))

    report = {}
    for kind in ("conversation", "new question"):
        part = [r for r in rows if r["kind"] == kind]
        if part:
            report[kind] = {
                "n": len(part),
                "rule": round(sum(right(r, z(r) > 0) for r in part) / len(part), 4),
                "always_alone": round(sum(r["alone"] for r in part) / len(part), 4),
                "always_joined": round(sum(r["joined"] for r in part) / len(part), 4),
            }
    return {"features": list(FEATURES),
            "coef": {n: round(float(c), 5) for n, c in zip(FEATURES, coef)},
            "intercept": round(float(intercept), 5),
            "rows": len(rows), "informative_rows": len(informative),
            "tune_top_paper_right": report,
            "note": "a turn is a follow-up (searched with the previous answer's first cited "
                    "title) when intercept + sum coef*feature > 0; features: rag.chat.evidence"}


if __name__ == "__main__":
    raise SystemExit(main())
