"""Helpers for eval tests (importable from test modules, unlike conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

# Six questions in the dev-set format, one of each type plus a gold_ids lookup.
SMALL = [
    {"id": "lookup-1", "type": "lookup",
     "question": "Which work adapts a small programming-focused network pretrained on C and C++ "
                 "so it can write programs for distributed-memory supercomputers that exchange "
                 "data between nodes, beating GPT-3.5?",
     "gold_titles": ["MPIrigen: MPI Code Generation through Domain-Specific Language Models"],
     "answer": ["MPIrigen"]},
    {"id": "lookup-2", "type": "lookup",
     "question": "PLANSEARCH algorithm that searches over natural-language plans for code "
                 "generation",
     "gold_ids": ["<PLANSEARCH>"], "answer": ["PLANSEARCH"]},
    {"id": "detail-1", "type": "detail",
     "question": "What top-1 accuracy on ImageNet-2012 did GPipe report for its "
                 "557-million-parameter AmoebaNet?",
     "gold_titles": ["GPipe: Efficient Training of Giant Neural Networks using Pipeline "
                     "Parallelism"], "answer": ["84.4%"]},
    {"id": "multi-1", "type": "multi",
     "question": "Which papers propose new pipeline-parallel schedules or libraries (e.g., "
                 "batch-splitting micro-batches or an interleaved schedule) for training giant "
                 "neural networks?",
     "gold_titles": ["GPipe: Efficient Training of Giant Neural Networks using Pipeline "
                     "Parallelism",
                     "Efficient Large-Scale Language Model Training on GPU Clusters Using "
                     "Megatron-LM"], "answer": ["pipeline"]},
    {"id": "followup-1", "type": "followup",
     "question": "How much cost saving does it report compared to ReAct?",
     "gold_titles": ["An LLM Compiler for Parallel Function Calling"], "answer": ["6.7x"],
     "turns": ["Which paper introduces a framework for parallel function calling inspired by "
               "classical compilers?",
               "How much cost saving does it report compared to ReAct?"]},
    {"id": "unanswerable-1", "type": "unanswerable",
     "question": "Which paper proposes an IO-aware exact attention kernel that tiles computation "
                 "to avoid reading the full attention matrix from GPU HBM?",
     "gold_titles": [], "answer": []},
]
PLANSEARCH_TITLE = "Planning In Natural Language Improves LLM Search For Code Generation"


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
                    encoding="utf-8")
    return path
