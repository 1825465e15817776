"""Relevance: the calibrated two-stage logistic model over a paper's declared features.

Its coefficients are fitted on the ``tune`` split by ``eval/calibrate.py``, per embedder,
and read from ``rag/calibration/<embedder>.json``. A coefficient is looked up by feature
name; a feature no component declares reads 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

CALIBRATION_DIR = Path(__file__).resolve().parents[1] / "calibration"

# Used when rag/calibration/<embedder>.json is missing: the earlier hand fit, on cosine
# and coverage only, with no second stage. Worked example: cosine 0.62, coverage 0.8 ->
# z = 11.07*0.62 + 5.79*0.8 - 6.88 = 4.61 -> relevance 0.99; cosine 0.40, coverage 0.30
# -> z = -0.71 -> 0.33.
DEFAULT_COEF = {"cosine": 11.07, "coverage": 5.79}
DEFAULT_INTERCEPT = -6.88


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True)
class Calibration:
    """The fitted constants of one embedder (see eval/calibrate.py).

    Two logistic stages. Stage 1 scores how well a paper matches the question:
    ``z = intercept + sum(coef[f] * paper feature f)``; it orders the papers shown.
    Stage 2 turns z into the relevance used for abstention, with the question-level
    evidence: ``relevance = 1 / (1 + e^-(q_intercept + q_coef["z"] * z + sum(q_coef[f] *
    question feature f)))``. Worked example (made-up constants): z = 2.0, q_coef z 1.2,
    unknown_share 0.3 at q_coef -4.0, unknown_name 1 at q_coef -1.5, q_intercept 0.5 ->
    0.5 + 2.4 - 1.2 - 1.5 = 0.2 -> relevance 0.55. The fitted intercept is shifted so
    that relevance 0.5 is the abstention cut chosen on the tune split.
    """

    embedder: str
    coef: dict[str, float]
    intercept: float
    fitted: bool  # False: the defaults above, no calibration file
    q_coef: dict[str, float] = field(default_factory=lambda: {"z": 1.0})
    q_intercept: float = 0.0
    source: str = ""
    cosine_floor: float = 0.0  # below it, no paper is even loosely about the question

    def relevances(self, features: Mapping[str, dict[str, float]]) -> dict[str, float]:
        """Stage 2 for every candidate of one question, and the floor: when even the best
        paper's ``cosine`` is under ``cosine_floor`` (fitted as the lowest best cosine of
        an answerable tune question), the question is about something no paper is about
        ("Who won the football world cup in 1998?": 0.14 with MiniLM, where answerable
        questions start at 0.19), and every relevance is 0. The logistic
        stages alone extrapolate there: the tune split holds near misses, not questions
        from another field, and its words are ordinary English, never evidence."""
        best = max((f.get("cosine", 0.0) for f in features.values()), default=0.0)
        if features and best < self.cosine_floor:
            return {pid: 0.0 for pid in features}
        return {pid: self.relevance(f) for pid, f in features.items()}

    def match(self, features: dict[str, float]) -> float:
        """Stage 1: the paper's match score z (orders papers within a question)."""
        return self.intercept + sum(c * features.get(n, 0.0) for n, c in self.coef.items())

    def relevance(self, features: dict[str, float]) -> float:
        """Stage 2: the relevance (0..1) of the paper to the question."""
        z = self.q_intercept + sum(
            c * (self.match(features) if n == "z" else features.get(n, 0.0))
            for n, c in self.q_coef.items())
        return _sigmoid(z)


@lru_cache(maxsize=8)
def load_calibration(embedder: str) -> Calibration:
    """``rag/calibration/<embedder>.json``, or the defaults when it is missing or unreadable
    (read once per process; ``load_calibration.cache_clear()`` reads it again)."""
    path = CALIBRATION_DIR / f"{embedder}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("embedder") != embedder:
            raise ValueError("calibration for another embedder")
        paper, question = data["paper_model"], data["question_model"]
        return Calibration(
            embedder, {str(k): float(v) for k, v in paper["coef"].items()},
            float(paper["intercept"]), True,
            {str(k): float(v) for k, v in question["coef"].items()},
            float(question["intercept"]), str(path), float(data.get("cosine_floor", 0.0)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Calibration(embedder, dict(DEFAULT_COEF), DEFAULT_INTERCEPT, False)
