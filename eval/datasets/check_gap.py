#!/usr/bin/env python3
"""Check eval/datasets/gap.jsonl, the lexical-gap question set.

Usage:  python eval/datasets/check_gap.py [path/to/gap.jsonl] [--corpus DIR]

Standalone: needs only the standard library and PyStemmer (``import Stemmer``;
``pip install PyStemmer``).  It never imports or runs the Q&A tool.

Corpus
------
``/work/shared/corpus/*.txt`` (override with ``--corpus`` or $GAP_CORPUS_DIR): daily
paper-listing pages.  Each file has header lines, a date line such as ``Aug 13``, then
alternating paragraphs (title, abstract) separated by blank lines.  Whitespace inside a
paragraph is collapsed to single spaces.  A paper may appear on several pages; pages
that repeat a paper repeat its abstract, so distinct papers are distinct abstracts
(358 for the shipped corpus; ``M^3ViT`` is also spelled ``M$^3$ViT``, and either
spelling is a valid gold title).

Rules checked for every line
----------------------------
1. The line is valid JSON with keys ``id``, ``type``, ``subtype``, ``question``,
   ``gold_titles`` (non-empty list), ``answer`` (non-empty list); ids are unique and
   the id prefix matches the kind: ``gap-lookup-`` (type ``lookup``, subtype ``gap``),
   ``gap-detail-`` (type ``detail``, subtype ``gap``), ``gap-two-`` (type ``detail``,
   subtype ``two_part``).
2. Every gold title (whitespace collapsed) is the title of exactly one distinct paper
   of the corpus.
3. Every ``answer`` string occurs verbatim (case-insensitive, whitespace collapsed) in
   the gold paper: lookups in title or abstract, details in the abstract.
4. ``two_part`` lines have exactly two answers, both in the abstract, and no sentence
   of the abstract contains both (each part is answered by a different sentence).
5. ``gap`` lines (lookups and gap details) share AT MOST ONE content stem with the
   gold paper's title + abstract together.  Content stems: the text is lowercased,
   split into tokens ``[a-z0-9]+`` of length >= 2, stemmed with the Snowball English
   stemmer, minus the stop-word list STOP_WORDS below, minus corpus-common stems (a
   stem found in the title + abstract of >= 5% of the distinct papers; the count is
   printed).  A ``gap`` question also must not contain the paper's name: the part of
   the title before ``:`` when it is one or two words, and any title word with two or
   more capitals (acronyms and coined names such as GPipe, VEGGIE, MoE); words whose
   stems are all corpus-common (AI, LLM, Attention) are generic, not names.
6. Marks: ``"spelling": "uk"`` lines must contain at least one British spelling (see
   UK_PATTERNS, minus UK_NOT); ``"numbers": "variant"`` lines must contain a number
   (a token with a digit, or a number word such as "forty", "thousand", "fold") and at
   least one such token must be absent from the gold title + abstract, i.e. the number
   is written differently there ("557M" for "557-million", "ten times" for "10x").
Minimums (gap lookups and gap details are "the gap lines"):
   >= 110 gap lookups, >= 24 gap details, >= 20 two-part questions;
   >= 28 uk-spelling gap lines and at least one fifth of the gap lines;
   >= 12 number-variant gap lines.

Output: a summary table, then one ``FAIL`` line per failing question (or rule), and
exit status 1 if anything failed, 0 otherwise.
"""
import glob
import json
import math
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field

import Stemmer

CORPUS_DIR = os.environ.get("GAP_CORPUS_DIR", "/work/shared/corpus")
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PATH = os.path.join(HERE, "gap.jsonl")

MIN_LOOKUP, MIN_DETAIL, MIN_TWO = 110, 24, 20
MIN_UK, MIN_NUM = 28, 12
COMMON_FRACTION = 0.05

STOP_WORDS = set("""
a about above after again against all almost also although always am among an and
another any anyone anything are around as at back be became because become been
before being below between both but by can cannot could did do does doing done down
during each either else enough etc even ever every few for from further get gets
given go going got had has have having he her here hers herself him himself his how
however i if in into is it its itself just kind know least less let like made make
makes many may me might more most much must my myself near need neither never no nor
not now of off often on once one only onto or other others our ours ourselves out
over own per quite rather really said same say says see seem she should since so some
something somewhere still such than that the their theirs them themselves then there
these they thing things this those though through thus to together too toward towards
under until up upon us use used uses using very via was way we well were what whatever
when where whether which while who whom whose why will with within without would yet
you your yours yourself yourselves
""".split())

UK_PATTERNS = [
    r"\w+is(e|es|ed|ing|ation|ations|er|ers)\b", r"\w+ys(e|es|ed|ing)\b",
    r"\w+our(s|ed|ing|able)?\b", r"\bdefen[cs]e\b", r"\boffen[cs]e\b", r"\blicen[cs]e\b",
    r"\b(model|label|travel|cancel|signal|channel|funnel|level|tunnel|fuel|counsel|total)l(ing|ed|er|ers)\b",
    r"\bcentre", r"\bmetre", r"\bprogramme", r"\bcatalogue", r"\banalogue", r"\bgrey\b",
    r"\bfulfil\b",
    r"\benrol\b", r"\bmaths\b", r"\bwhilst\b", r"\bplough", r"\bcheque", r"\btyre",
    r"\b(neighbour|colour|favour|honour|labour|flavour|behaviour|rumour|vapour|harbour|armour|endeavour)\w*",
    r"\bjudgement", r"\bageing\b", r"\bsceptic",
]
# words that look British by the patterns above but are spelled the same in the US
UK_NOT = set("""
rise rises rising raise raised raising arise arises arising noise noises noisy wise
otherwise likewise clockwise pairwise stepwise elementwise pointwise layerwise
precise precisely promise promises promised premise premises exercise exercises
advise advised surprise surprised surprising surprisingly expertise enterprise
enterprises compromise compromised franchise disguise disguised revise revised
revising supervise supervised supervising supervision supervisor supervisors
televise comprise comprises comprising devise devised devising concise
despise improvise improvised chastise merchandise advertise advertising advertised
praise praised poise paradise treatise excise incise circumcise bruise cruise
noising noised denoising denoised house houses housed housing horse horses nurse nurses
purpose purposes
course courses source sources resource resources tour tours four hour hours your
yours our ours pour poured flour sour scour detour contour contours devour
analysis
""".split())
NUMBER_WORDS = set("""
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy
eighty ninety hundred thousand million billion trillion half double twice triple
thrice quarter third dozen percent fold doubling doubled halving halved
fifths tenths quarters thirds hundreds thousands millions billions dozens
half fifth sixth seventh eighth ninth tenth tripling tripled quadrupled
""".split())

_stemmer = Stemmer.Stemmer("english")
_TOKEN = re.compile(r"[a-z0-9]+")


def collapse(s):
    return re.sub(r"\s+", " ", s).strip()


def tokens(text):
    return [t for t in _TOKEN.findall(text.lower()) if len(t) >= 2]


def stems(text):
    return {_stemmer.stemWord(t) for t in tokens(text) if t not in STOP_WORDS}


def parse_file(path):
    """Return [(title, abstract)] of one listing page."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    paras = [collapse(p) for p in re.split(r"\n\s*\n", text)]
    paras = [p for p in paras if p]
    date = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
                      r"[a-z]*\.? \d{1,2}(, \d{4})?")
    start = next((k for k, p in enumerate(paras) if date.fullmatch(p)), None)
    if start is None:
        raise SystemExit(f"{path}: no date line found")
    body = paras[start + 1:]
    if len(body) % 2:
        raise SystemExit(f"{path}: odd number of paragraphs after the date line")
    return [(body[k], body[k + 1]) for k in range(0, len(body), 2)]


def load_corpus(corpus_dir):
    files = sorted(glob.glob(os.path.join(corpus_dir, "*.txt")))
    if not files:
        raise SystemExit(f"no corpus files in {corpus_dir}")
    by_title: dict[str, set[str]] = {}  # title -> set of abstracts
    abstracts: dict[str, list[str]] = {}  # abstract -> list of titles (one distinct paper each)
    file_of: dict[str, set[str]] = {}  # abstract -> set of file names
    for f in files:
        for title, abstract in parse_file(f):
            by_title.setdefault(title, set()).add(abstract)
            abstracts.setdefault(abstract, [])
            if title not in abstracts[abstract]:
                abstracts[abstract].append(title)
            file_of.setdefault(abstract, set()).add(os.path.basename(f))
    return by_title, abstracts, file_of


def name_tokens(title, common=frozenset()):
    """Names a gap question must not use: short pre-colon name, multi-capital words.

    Words whose stem is corpus-common (AI, LLM, GPT, Attention, ...) are generic, not names."""
    names: set[str] = set()
    if ":" in title:
        head = title.split(":", 1)[0].strip()
        if len(head.split()) <= 2:
            names.update(w.lower() for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9^$\-]*", head))
    for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9\-]*", title):
        for part in w.split("-"):
            if sum(c.isupper() for c in part) >= 2 and len(part) >= 2:
                names.add(part.lower())
    return {n for n in names if len(n) >= 2 and n not in STOP_WORDS
            and not (stems(n) and stems(n) <= common)}


def sentences(text):
    return re.split(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])", text)


def is_uk(question):
    low = question.lower()
    for pat in UK_PATTERNS:
        for m in re.finditer(pat, low):
            if m.group(0) not in UK_NOT:
                return True
    return False


def number_tokens(text):
    """Number-like tokens: any token with a digit, or a number word."""
    return {t for t in _TOKEN.findall(text.lower()) if re.search(r"\d", t) or t in NUMBER_WORDS}


def has_number(question):
    """True if the question writes a number: a digit or a number word."""
    return bool(number_tokens(question))


KINDS = {"gap-lookup-": ("lookup", "gap"), "gap-detail-": ("detail", "gap"),
         "gap-two-": ("detail", "two_part")}
REQUIRED_KEYS = ("id", "type", "subtype", "question", "gold_titles", "answer")


@dataclass
class Tally:
    """Everything accumulated while checking the question lines."""
    failures: list[str] = field(default_factory=list)
    counts: Counter[str | tuple[str, str]] = field(default_factory=Counter)
    gold_papers: Counter[str] = field(default_factory=Counter)
    gold_files: Counter[str] = field(default_factory=Counter)
    ids: Counter[str] = field(default_factory=Counter)
    overlaps: Counter[int] = field(default_factory=Counter)


def parse_args(argv):
    """Return (path to gap.jsonl, corpus directory) from the command line."""
    path = DEFAULT_PATH
    corpus_dir = CORPUS_DIR
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--corpus":
            corpus_dir = args.pop(0)
        else:
            path = a
    return path, corpus_dir


def common_stems(abstracts):
    """Return (corpus-common stems, paper-count cut-off) over the distinct papers."""
    df: Counter[str] = Counter()
    for abstract, titles in abstracts.items():
        df.update(stems(titles[0] + " " + abstract))
    cut = math.ceil(COMMON_FRACTION * len(abstracts))
    return {s for s, c in df.items() if c >= cut}, cut


def gold_papers_of(q, by_title, bad):
    """Resolve the gold titles to [(title, abstract)]; note unresolved ones in bad."""
    papers = []
    for t in q["gold_titles"]:
        abs_set = by_title.get(collapse(t), set())
        if len(abs_set) != 1:
            bad.append(f"gold title found for {len(abs_set)} papers: {t!r}")
        else:
            papers.append((collapse(t), next(iter(abs_set))))
    return papers


def check_answers(q, title, abstract, bad):
    """Rules 3 and 4: answers verbatim in the gold paper; two-part answers apart."""
    where = (title + " " + abstract) if q["type"] == "lookup" else abstract
    for a in q["answer"]:
        if collapse(a).lower() not in where.lower():
            bad.append("answer not verbatim in gold "
                       f"{'title/abstract' if q['type'] == 'lookup' else 'abstract'}: "
                       f"{a!r}")
    if q["subtype"] == "two_part":
        if len(q["answer"]) != 2:
            bad.append("two_part needs exactly 2 answers")
        else:
            a1, a2 = (collapse(a).lower() for a in q["answer"])
            for s in sentences(abstract):
                if a1 in s.lower() and a2 in s.lower():
                    bad.append("both answers occur in one sentence")
                    break


def check_gap_overlap(q, title, abstract, common, tally, bad):
    """Rule 5: a gap question shares <= 1 content stem and never names the paper."""
    shared = (stems(q["question"]) - common) & (stems(title + " " + abstract) - common)
    tally.overlaps[len(shared)] += 1
    if len(shared) > 1:
        bad.append(f"shares {len(shared)} content stems: {sorted(shared)}")
    qtok = set(tokens(q["question"])) | set(
        re.findall(r"[a-z0-9^$\-]+", q["question"].lower()))
    names = name_tokens(title, common) & qtok
    if names:
        bad.append(f"uses the paper's name: {sorted(names)}")


def check_marks(q, papers, tally, bad):
    """Rule 6: the "spelling" and "numbers" marks of a gap line."""
    if q.get("spelling") == "uk":
        tally.counts["uk"] += 1
        if not is_uk(q["question"]):
            bad.append('marked "spelling": "uk" but no British spelling found')
    if q.get("numbers") == "variant":
        tally.counts["num"] += 1
        if not has_number(q["question"]):
            bad.append('marked "numbers": "variant" but no number in the question')
        elif papers and not (number_tokens(q["question"]) -
                             set(_TOKEN.findall(
                                 (papers[0][0] + " " + papers[0][1]).lower()))):
            bad.append('marked "numbers": "variant" but every number token of the '
                       'question also occurs in the gold title/abstract')


def parse_line(n, line, failures):
    """Return the question dict of line n, or None (after noting why) if unusable."""
    try:
        q = json.loads(line)
    except json.JSONDecodeError as e:
        failures.append(f"line {n}: invalid JSON ({e})")
        return None
    if not isinstance(q, dict):
        failures.append(f"line {n}: not a JSON object")
        return None
    missing = [k for k in REQUIRED_KEYS if k not in q]
    if missing:
        failures.append(f"{q.get('id', f'line {n}')}: missing keys {missing}")
        return None
    return q


def check_question(q, corpus, common, tally):
    """Apply rules 1-6 to one parsed question, recording counts and failures."""
    by_title, file_of = corpus
    qid = q["id"]
    bad: list[str] = []
    tally.ids[qid] += 1
    kind = next((p for p in KINDS if str(qid).startswith(p)), None)
    if kind is None or (q["type"], q["subtype"]) != KINDS[kind]:
        bad.append(f"id prefix/type/subtype mismatch ({q['type']}/{q['subtype']})")
    if not isinstance(q["gold_titles"], list) or not q["gold_titles"] or \
            not isinstance(q["answer"], list) or not q["answer"] or \
            not all(isinstance(a, str) and a.strip() for a in q["answer"]):
        tally.failures.append(f"{qid}: gold_titles/answer must be non-empty lists of strings")
        return
    papers = gold_papers_of(q, by_title, bad)
    if papers and not bad:
        title, abstract = papers[0]
        tally.gold_papers[abstract] += 1
        for f in file_of[abstract]:
            tally.gold_files[f] += 1
        check_answers(q, title, abstract, bad)
        if q["subtype"] == "gap":
            check_gap_overlap(q, title, abstract, common, tally, bad)
    if q["subtype"] == "gap":
        check_marks(q, papers, tally, bad)
    tally.counts[(q["type"], q["subtype"])] += 1
    for b in bad:
        tally.failures.append(f"{qid}: {b}")


def check_lines(lines, corpus, common):
    """Check every question line and duplicate ids; return the Tally."""
    tally = Tally()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        q = parse_line(n, line, tally.failures)
        if q is not None:
            check_question(q, corpus, common, tally)
    for qid, c in tally.ids.items():
        if c > 1:
            tally.failures.append(f"{qid}: id used {c} times")
    return tally


def minimums_of(counts):
    """Return [(name, have, need)] for the minimum counts."""
    n_lookup = counts[("lookup", "gap")]
    n_detail = counts[("detail", "gap")]
    need_uk = max(MIN_UK, math.ceil((n_lookup + n_detail) / 5))
    return [("gap lookups", n_lookup, MIN_LOOKUP), ("gap details", n_detail, MIN_DETAIL),
            ("two-part details", counts[("detail", "two_part")], MIN_TWO),
            ("uk spelling (gap lines)", counts["uk"], need_uk),
            ("number variants (gap lines)", counts["num"], MIN_NUM)]


def print_summary(tally, n_papers, n_files, n_common, cut):
    """Print the summary table (noting unmet minimums), then the failures."""
    print(f"corpus: {n_papers} distinct papers in {n_files} files; "
          f"{n_common} corpus-common stems (in >= {cut} papers, {COMMON_FRACTION:.0%}) excluded")
    print(f"questions: {sum(tally.counts[k] for k in KINDS.values())}; "
          f"distinct gold papers: {len(tally.gold_papers)}")
    print()
    print(f"{'count':<30}{'have':>6}{'need':>6}  ok")
    for name, have, need in minimums_of(tally.counts):
        ok = have >= need
        print(f"{name:<30}{have:>6}{need:>6}  {'yes' if ok else 'NO'}")
        if not ok:
            tally.failures.append(f"minimum not met: {name} {have} < {need}")
    print()
    print("gold-paper lines per corpus file: " +
          ", ".join(f"{f[:3]}={tally.gold_files[f]}" for f in sorted(tally.gold_files)))
    print("gap lines by shared content stems: " +
          ", ".join(f"{k}={tally.overlaps[k]}" for k in sorted(tally.overlaps)))
    print()
    for f in tally.failures:
        print("FAIL", f)
    print(f"{len(tally.failures)} failure(s)")


def main(argv):
    path, corpus_dir = parse_args(argv)
    by_title, abstracts, file_of = load_corpus(corpus_dir)
    common, cut = common_stems(abstracts)
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    tally = check_lines(lines, (by_title, file_of), common)
    print_summary(tally, len(abstracts), len(set().union(*file_of.values())), len(common), cut)
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
