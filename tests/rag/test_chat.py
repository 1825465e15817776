"""Follow-ups decided by evidence: a turn leans on the previous one only when it cannot
stand on its own; a turn after an abstention starts fresh. Same rule in `ask chat`."""

from __future__ import annotations

from helpers import run_ask

from rag.chat import (
    FEATURES,
    Conversation,
    FollowupRule,
    Subject,
    evidence,
    load_followup_rule,
    named_terms,
    subject,
    with_subject,
)
from rag.types import Answer, Citation, Hit, StoredPaper

GQSA = "Which paper combines group quantization with structured sparsity to speed up LLM inference?"


def _answer(abstained: bool = False, cited: tuple[str, ...] = ("GQSA",)) -> Answer:
    return Answer(question="q", text="t", abstained=abstained,
                  citations=tuple(Citation(i + 1, f"p{i}", t) for i, t in enumerate(cited)),
                  hits=(), answerer="offline")


def _hit(pid: str, title: str, abstract: str, relevance: float, dense: float) -> Hit:
    return Hit(rank=1, paper=StoredPaper(pid, title, abstract, (), ()), score=1.0,
               relevance=relevance, dense=dense)


# --- the pieces -------------------------------------------------------------------------

def test_subject_is_the_first_cited_paper_and_none_after_an_abstention():
    conv = Conversation()
    assert subject(conv) is None and subject(None) is None
    conv.add("q1", _answer(cited=("GQSA", "Other")))
    assert subject(conv) == Subject("GQSA", "p0")
    conv.add("q2", _answer(abstained=True, cited=()))
    assert subject(conv) is None  # the next turn starts fresh
    conv.add("q3", _answer(cited=()))  # answered, but cited nothing: its question is the subject
    assert subject(conv) == Subject("q3")
    assert with_subject("how fast?", "GQSA") == "how fast? (about: GQSA)"


def test_evidence_measures_what_the_turn_names_that_the_subject_lacks():
    alone = [_hit("a", "ALMA", "ALMA improves translation by 12 BLEU.", 0.9, 0.30)]
    joined = [_hit("s", "Grammar books", "Grammar books help translation.", 0.99, 0.64)]
    rare = {"alma": 0.83, "bleu": 0.7, "improv": 0.75}
    feats = evidence(alone, joined, "And ALMA's average improvement in BLEU?",
                     {"grammar", "book", "translat"}, lambda t: rare.get(t, 0.3))
    assert set(feats) == set(FEATURES)
    assert feats["distinct"] == 0.83 and feats["relevance"] == 0.9
    assert round(feats["gain"], 2) == 0.34 and feats["cosine"] == 0.30
    feats = evidence(alone, joined, "Did ALMA improve translation?", {"translat"},
                     lambda t: rare.get(t, 0.3))
    assert feats["distinct"] == 0.83 and feats["distinct_name"] == 0.83
    # a plain word the best paper shares counts in "distinct" only
    feats = evidence(alone, joined, "did it improve?", set(), lambda t: rare.get(t, 0.3))
    assert feats["distinct"] == 0.75 and feats["distinct_name"] == 0.0
    # a turn whose best paper alone shares nothing with it beyond the subject's words
    feats = evidence(alone, joined, "how many?", {"how", "mani"}, lambda t: 0.3)
    assert feats["distinct"] == 0.0 and feats["distinct_name"] == 0.0


def test_named_terms_are_words_written_as_names():
    assert named_terms("And ALMA's BLEU gain over GPT4, did it beat Cybench?") == {
        "alma", "bleu", "gpt4", "cybench"}
    assert named_terms("Which benchmarks did they use?") == set()  # a first word is no name


def test_rule_worked_example():
    rule = FollowupRule()
    vague = {"relevance": 0.59, "cosine": 0.35, "gain": 0.39, "distinct": 0.38}
    named = {"relevance": 0.89, "cosine": 0.29, "gain": 0.35, "distinct": 0.83}
    assert round(rule.z(vague), 2) == 0.70 and rule.is_followup(vague)
    assert round(rule.z(named), 2) == -2.52 and not rule.is_followup(named)


def test_shipped_calibration_has_a_fitted_followup_rule():
    rule = load_followup_rule("minilm")
    assert rule.fitted and [n for n, _ in rule.coef] == list(FEATURES)


# --- end to end on the bundled corpus ------------------------------------------------------

def test_follow_up_that_cannot_stand_alone_uses_the_previous_paper(bundled_pipeline):
    conv = Conversation()
    first = bundled_pipeline.answer(GQSA, conversation=conv)
    assert first.citations[0].title.startswith("GQSA")
    ans = bundled_pipeline.answer("How much faster is it than 2:4 pruning?", conversation=conv)
    assert "GQSA" in ans.standalone_question
    assert ans.citations[0].title.startswith("GQSA") and "2.35times" in ans.text


def test_new_topic_after_gqsa_is_answered_about_the_new_topic(bundled_pipeline):
    conv = Conversation()
    bundled_pipeline.answer(GQSA, conversation=conv)
    ans = bundled_pipeline.answer(
        "Which benchmarks test agents that operate apps on mobile phones and what do they "
        "measure?", conversation=conv)
    assert ans.standalone_question == ""  # searched as asked
    assert not ans.abstained
    assert all(not c.title.startswith("GQSA") for c in ans.citations)
    assert any("Android" in c.title or "Mobile" in c.title for c in ans.citations)


def test_short_keyword_turn_is_a_new_question(bundled_pipeline):
    conv = Conversation()
    bundled_pipeline.answer(GQSA, conversation=conv)
    ans = bundled_pipeline.answer("OSWorld task count", conversation=conv)
    assert ans.standalone_question == ""
    assert ans.citations[0].title.startswith("OSWorld") and "369" in ans.text


def test_turn_after_an_abstention_starts_fresh(bundled_pipeline):
    conv = Conversation()
    off = bundled_pipeline.answer("Who won the football world cup in 1998?", conversation=conv)
    assert off.abstained
    ans = bundled_pipeline.answer("How many tasks does it have?", conversation=conv)
    assert ans.standalone_question == ""  # nothing from the abstained turn is carried


def test_ask_chat_applies_the_same_rule(bundled_dir):
    lines = "\n".join([GQSA, "How much faster is it than 2:4 pruning?", "OSWorld task count"])
    out = run_ask("chat", "--data-dir", bundled_dir, input=lines + "\n")
    assert out.returncode == 0, out.stderr
    # the follow-up is searched with GQSA's title; the keyword turn as typed
    assert out.stderr.count("(searching: ") == 1
    assert "(searching: How much faster is it than 2:4 pruning? (about: GQSA" in out.stderr
    answers = out.stdout.split("Sources")
    assert "2.35times" in answers[1] and "369" in answers[2]
