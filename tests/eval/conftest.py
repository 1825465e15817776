"""Fixtures for the eval harness tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def small_dataset(tmp_path, bundled_pipeline):
    """The six-question dataset of eval_helpers.SMALL, written as JSON Lines.

    The gold_ids line gets the real id of its paper from the bundled index.
    """
    from eval_helpers import PLANSEARCH_TITLE, SMALL, write_jsonl

    ids = [p.paper_id for p in bundled_pipeline.papers()
           if p.title == PLANSEARCH_TITLE]
    assert len(ids) == 1
    rows = [dict(r, gold_ids=ids) if "gold_ids" in r else r for r in SMALL]
    return write_jsonl(tmp_path / "small.jsonl", rows)
