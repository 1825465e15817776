"""Text, the one copy: words, stems, stop words, sentences, citations, display-safe text.

Every stage that looks at words uses these functions (the BM25 build and query, the
relevance coverage, the offline answerer's sentence picking, the UI's highlighting),
so a question and a chunk are always cut and stemmed the same way.

Stemming is Snowball English (Porter 2), as in Lucene's English analyzer and bm25s:
"proposes", "proposed" and "proposing" all become "propos", so a word form in the
question never decides whether a paper matches.
"""

from __future__ import annotations

import re
from functools import lru_cache

# --- words ------------------------------------------------------------------------------

WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's and bm25s' token pattern: 2+ chars
# Chinese, Japanese and Korean are written without spaces, so a name typed among them
# ("哪篇论文提出了GPipe") would be one \w+ token with them. A space goes in wherever such
# a character meets a Latin letter or digit, so "GPipe" is a word of its own.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_HAS_CJK = re.compile(f"[{_CJK}]")
_SCRIPT_CHANGE = re.compile(f"(?<=[{_CJK}])(?=[A-Za-z0-9])|(?<=[A-Za-z0-9])(?=[{_CJK}])")

# Lucene's English stop set (also bm25s' "en" list). BM25 and coverage both drop these;
# everything else ("paper", "which", "propose") is weighted by its IDF instead of being
# listed by hand: a word that every abstract uses weighs almost nothing on its own.
STOPWORDS = frozenset((
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with").split())


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: Snowball's C stemmers

    return Stemmer.Stemmer("english")


# Bump when words() or stem() change what they return: every BM25 cache, built with the
# old analyzer, is then rebuilt (rag/lexical.py's FORMAT includes it).
ANALYZER = "3"


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball English stem of one lowercased word, after its British spelling is made
    American (:func:`american`): 'proposes' -> 'propos', 'organisations' -> 'organ'."""
    return _stemmer().stemWord(american(word))


def words(text: str) -> list[str]:
    """Lowercased words of 2+ characters, stop words removed, not stemmed; numbers in
    one written form (:func:`number_forms`); a Latin name among CJK text is its own word.

    >>> words("哪篇论文提出了GPipe")
    ['哪篇论文提出了', 'gpipe']
    """
    text = text.lower()
    if _HAS_CJK.search(text) is not None:  # the split's lookbehinds cost ~0.1 ms a text
        text = split_scripts(text)
    return [w for w in WORD.findall(number_forms(text)) if w not in STOPWORDS]


def has_cjk(text: str) -> bool:
    """Whether the text holds a Chinese, Japanese or Korean character."""
    return _HAS_CJK.search(text) is not None


def split_scripts(text: str) -> str:
    """A space wherever a CJK character meets a Latin letter or digit (see _CJK)."""
    return _SCRIPT_CHANGE.sub(" ", text)


# --- spelling and number forms ------------------------------------------------------------
# A user writes "behavioural", "organisation", "1.5-fold", "557M"; the abstract says
# "behavioral", "organization", "1.5x", "557-million". Both sides are brought to one form
# before stemming, in the BM25 analyzer and in every coverage feature alike (they all
# call words()/stem()), so the two spellings are one term. The rules only need to be
# consistent, not right: "precise" becoming "precize" on both sides changes nothing.

# Whole words that no suffix rule catches (British -> American).
_UK_WORDS = {
    "defence": "defense", "offence": "offense", "licence": "license", "pretence": "pretense",
    "practise": "practice", "practised": "practiced", "practises": "practices",
    "practising": "practicing", "grey": "gray", "aluminium": "aluminum",
    "programme": "program", "programmes": "programs", "judgement": "judgment",
    "judgements": "judgments", "ageing": "aging", "artefact": "artifact",
    "artefacts": "artifacts", "sceptical": "skeptical", "scepticism": "skepticism",
    "mould": "mold", "moulds": "molds", "whilst": "while", "amongst": "among",
    "learnt": "learned", "tyre": "tire", "tyres": "tires", "plough": "plow",
    "enrolment": "enrollment", "fulfil": "fulfill", "fulfilment": "fulfillment",
    "skilful": "skillful", "wilful": "willful", "instalment": "installment",
    "aeroplane": "airplane", "aeroplanes": "airplanes", "diarrhoea": "diarrhea",
    "manoeuvre": "maneuver", "manoeuvres": "maneuvers", "cheque": "check",
}
_UK_RULES = [
    # colour, behavioural, favourite, neighbourhood, tumours (a list: "four", "hour",
    # "your", "tour" must not lose their u)
    ("our", re.compile(r"^(behavi|col|fav|hon|lab|neighb|rum|vap|harb|hum|flav|sav|endeav|arm|tum|"
                r"od|vig|rig|val|clam|splend|ferv|cand|ard|demean|parl)our"), r"\1or"),
    # centre, fibre, metres, theatre, calibre, spectre, litre, lustre, sombre, meagre
    ("re", re.compile(r"^(cent|fib|met|theat|calib|spect|lit|lust|somb|meag|sab)re(s|d)?$"),
     r"\1er\2"),
    # catalogue, dialogues, analogue, monologue, prologue, epilogue, homologue
    ("ogue", re.compile(r"^(catal|dial|anal|monol|prol|epil|homol)ogue(s)?$"), r"\1og\2"),
    # modelling, labelled, travellers, signalling, cancelled, tunnelling, fuelled
    ("ll", re.compile(r"^(model|label|travel|cancel|signal|fuel|tunnel|channel|level|counsel|"
                r"marshal|funnel|jewel|marvel|rival|total|dial|equal|pencil|shovel)l"
                r"(ed|ing|ings|er|ers)$"), r"\1\2"),
    # haemoglobin, anaemia, paediatric, orthopaedic, anaesthesia, gynaecology, oesophagus,
    # oestrogen, foetal, oedema, leukaemia, ischaemic
    ("aem", re.compile(r"^(h|an|leuk|isch|septic)aem"), r"\1em"),
    ("aed", re.compile(r"^(p|orthop|encyclop)aed"), r"\1ed"),
    ("aes", re.compile(r"^(an)aes"), r"\1es"), ("aec", re.compile(r"^gynaec"), "gynec"),
    ("oe", re.compile(r"^oe(soph|str|dem)"), r"e\1"), ("foet", re.compile(r"^foet"), "fet"),
    # analyse, paralysed, catalysing (before -ise: "analyse" has no "is")
    ("ys", re.compile(r"^(\w+)ys(e|es|ed|ing|er|ers)$"), r"\1yz\2"),
    # organise, optimisation, regulariser, linearisation, tokenisers (2+ letters before
    # "is", so "rise" and "wise" stay)
    ("is", re.compile(r"^(\w{2,}?)is(e|es|ed|ing|er|ers|ation|ations|ational|able|ability)$"),
     r"\1iz\2"),
]


@lru_cache(maxsize=200_000)
def american(word: str) -> str:
    """One lowercased word in American spelling (the form stems are taken of).

    >>> [american(w) for w in ("behavioural", "organisations", "defence", "modelling")]
    ['behavioral', 'organizations', 'defense', 'modeling']
    """
    if word in _UK_WORDS:
        return _UK_WORDS[word]
    for needle, pattern, repl in _UK_RULES:
        if needle in word:  # most words hold no rule's needle: no regex runs for them
            word = pattern.sub(repl, word)
    return word


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate(
    "thirty forty fifty sixty seventy eighty ninety".split(), start=3)})
_NUMBER_WORDS["hundred"] = "100"
_NUM = r"(\d+(?:\.\d+)?)"
# A number word before a unit: "forty percent", "two-fold", "ten times", "two thousand".
_UNITS = r"percent|per\s+cent|fold|times|thousand|million|billion|trillion"
_SPELLED = re.compile(r"\b(%s)(?=[\s-]+(?:%s)\b)" % ("|".join(_NUMBER_WORDS), _UNITS), re.I)
# _SPELLED only matches before one of these words; looking for them with `in` first
# saves its scan (~0.15 ms on an abstract) in the four texts out of five that have none.
_SPELLED_UNITS = ("cent", "fold", "times", "thousand", "million", "billion", "trillion")
_DIGIT = re.compile(r"\d")


def _may_spell(text: str) -> bool:
    low = text.lower()
    return any(unit in low for unit in _SPELLED_UNITS)


_UNIT_AFTER = re.compile(r"[\s-]+(?:%s)\b" % _UNITS, re.I)  # _SPELLED's lookahead
_NUMBER_WORD = re.compile(r"(?:%s)\Z" % "|".join(_NUMBER_WORDS), re.I)


def _spell_numbers(text: str) -> str:
    """``_SPELLED.sub``, found from the units: "forty percent" -> "40 percent".

    The units are rare and a scan for them is quick; _SPELLED tries its 28 number words
    at every word start (0.24 ms an abstract). The number word _SPELLED would match
    before a unit is the whole run of word characters that ends where the unit's
    separators begin (its \b start means no word character comes before it). A word
    that matches only by case folding ("ſix", long s) maps by its casefold.
    """
    out, last = [], 0
    for m in _UNIT_AFTER.finditer(text):
        end = begin = m.start()
        while begin > last and (text[begin - 1].isalnum() or text[begin - 1] == "_"):
            begin -= 1
        word = text[begin:end]  # (`last` ends a number word, before a unit: never inside)
        if word and _NUMBER_WORD.match(word):
            low = word.lower()
            out += [text[last:begin], _NUMBER_WORDS.get(low) or _NUMBER_WORDS.get(
                low.casefold(), word)]
            last = end
    return "".join(out) + text[last:] if out else text


_THOUSANDS = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")  # 2,000 -> 2000
_DIMS = re.compile(r"\b(\d+)\s?[x×]\s?(\d+)\b", re.I)  # 9 × 9 -> 9x9
_TIMES = re.compile(_NUM + r"(?:\s?×|x\b|\s?-?\s?fold\b|\s+times\b)", re.I)  # 1.5-fold -> 1.5x
_PERCENT = re.compile(_NUM + r"\s?(?:%|percent\b|per\s+cent\b)", re.I)  # 40% -> 40 percent
_SCALE = re.compile(_NUM + r"(?:\s?-?\s?(thousand|million|billion|trillion)\b|"
                    r"(k|m|b|t|mn|bn)\b)", re.I)  # 557-million, 557M -> 557m
_UNIT = {"thousand": "k", "million": "m", "billion": "b", "trillion": "t", "mn": "m", "bn": "b"}


def _joined(number: str) -> str:
    """'1.5' -> '1_5': a decimal stays one token (WORD splits at '.', not at '_')."""
    return number.replace(".", "_")


def number_forms(text: str) -> str:
    """Numbers written one way (units lowercased; the rest of the text as it was).

    Worked examples: "557-million-parameter" and "557m-parameter" -> "557m-parameter";
    "1.5-fold", "1.5 times" and "1.5×" -> "1_5x"; "9 × 9" -> "9x9"; "forty percent" and
    "40%" -> "40 percent"; "2,000" -> "2000"; "two thousand" -> "2k".

    >>> number_forms("a 557-million model, 1.5 times faster on 9 × 9 boards, forty percent")
    'a 557m model, 1_5x faster on 9x9 boards, 40 percent'
    """
    spelled = _may_spell(text)
    if not spelled and _DIGIT.search(text) is None:
        return text
    if spelled:
        text = _spell_numbers(text)
    text = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), text)
    text = _DIMS.sub(r"\1x\2", text)
    text = _TIMES.sub(lambda m: _joined(m.group(1)) + "x", text)
    text = _PERCENT.sub(lambda m: _joined(m.group(1)) + " percent", text)
    return _SCALE.sub(lambda m: _joined(m.group(1)) + _UNIT.get(
        (m.group(2) or m.group(3)).lower(), (m.group(2) or m.group(3)).lower()), text)


def terms(text: str) -> list[str]:
    """Stemmed words: the tokens of BM25 (build and query) and of coverage.

    >>> terms("Which paper proposes GPipe?")
    ['which', 'paper', 'propos', 'gpipe']
    """
    return [stem(w) for w in words(text)]


# --- sentences --------------------------------------------------------------------------

# A candidate sentence end: ., ! or ? then whitespace then something that can start a
# sentence. Decimals ("3.5") never match: they have no whitespace after the dot.
_SENT_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'\[])")
# Endings that are not sentence ends: abbreviations and initials ("J. Smith").
_NOT_END = re.compile(
    r"(?:\b(?:e\.g|i\.e|et al|etc|vs|cf|Fig|Figs|Eq|Eqs|Sec|Tab|approx|resp|w\.r\.t|No|Dr|"
    r"Inc|Ltd|Corp|St|Mr|Ms|Prof)\.|(?<![\w.])[A-Z]\.)$", re.I)
# "Hogwild! Inference", "Yahoo! Answers": a capitalized word with "!" followed by another
# capitalized word is a name, not the end of a sentence.
_NAME_BANG = re.compile(r"\b[A-Z][\w-]*!$")


def sentences(text: str) -> list[str]:
    """Sentences of an abstract.

    >>> sentences("We use e.g. GPUs. Hogwild! Inference runs 2.5x faster. Done.")
    ['We use e.g. GPUs.', 'Hogwild! Inference runs 2.5x faster.', 'Done.']
    """
    parts = _SENT_END.split(text.strip())
    out: list[str] = []
    for part in parts:
        if out and (_NOT_END.search(out[-1]) or (
                _NAME_BANG.search(out[-1]) and part[:1].isupper())):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return [s.strip() for s in out if s.strip()]


# --- citations --------------------------------------------------------------------------

CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")  # [1], [1, 2], [1; 3]


def citation_numbers(group: str) -> list[int]:
    """The numbers inside one citation bracket's group: '1, 3' -> [1, 3]."""
    return [int(x) for x in re.split(r"\s*[,;]\s*", group)]


def cited(text: str) -> list[int]:
    """Every citation number in the text, in order of appearance."""
    return [n for m in CITE.finditer(text) for n in citation_numbers(m.group(1))]


def split_citations(text: str) -> list[str | list[int]]:
    """The text in pieces, plain strings and the numbers of each citation bracket, in
    order (a front end links the numbers): "A [1, 2]. B" -> ["A ", [1, 2], ". B"]."""
    out: list[str | list[int]] = []
    last = 0
    for m in CITE.finditer(text):
        out += [text[last:m.start()], citation_numbers(m.group(1))]
        last = m.end()
    out.append(text[last:])
    return out


def citing_sentences(text: str, n: int) -> str:
    """The sentences of an answer that cite [n] (the whole answer when none does): the
    evidence :func:`supporting_sentences` looks for in paper ``n``'s abstract."""
    parts = [s for para in text.split("\n") for s in sentences(para) if n in cited(s)]
    return " ".join(parts) or text


def _content_terms(text: str) -> set[str]:
    return {t for t in terms(text) if len(t) > 2}


def supporting_sentences(abstract: str, evidence: str) -> list[tuple[str, bool]]:
    """The abstract's sentences, each with whether it supports ``evidence`` (the answer
    text citing this paper): the UI marks these in a source card.

    A sentence the answer quotes (the offline answerer copies sentences) always
    counts; otherwise one counts when most of its content words (stemmed, as BM25
    sees them) appear in the evidence (an LLM paraphrase). When nothing passes, the
    best sentence with a fair overlap is taken, so a cited paper shows where its
    support is.
    """
    quoted = " ".join(words(evidence))
    ev_terms = _content_terms(evidence)
    parts = sentences(abstract)
    scores = []
    for s in parts:
        norm = " ".join(words(s))
        if len(norm) > 20 and norm in quoted:
            scores.append(1.0)
            continue
        own = _content_terms(s)
        scores.append(len(own & ev_terms) / len(own) if len(own) >= 3 else 0.0)
    marks = [sc >= 0.6 for sc in scores]
    if not any(marks) and scores and max(scores) >= 0.3:
        marks[scores.index(max(scores))] = True
    return list(zip(parts, marks, strict=True))


# --- display-safe text ------------------------------------------------------------------

# ANSI escape sequences: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \), and the
# other two-character escapes. Their 8-bit forms (U+009B CSI, U+009D OSC) too. A string
# sequence (OSC, DCS, ...) is removed whole only when it is terminated on the same line;
# an unterminated one loses just its introducer (the ESC goes with the other controls),
# so a stray "ESC ]" cannot swallow the rest of an abstract.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"                     # CSI: colours, cursor moves, ESC[2J
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)"  # OSC: titles, OSC 8 links
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c\n]*(?:\x1b\\|\x9c)"  # DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]"                                     # other escapes (ESC c resets)
)
# C0 and C1 control characters (Unicode category Cc), DEL included, except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069) and the marks that
# can reorder what follows them (U+200E, U+200F, U+061C): "fdp.exe" must not show as
# "exe.pdf".
_BIDI_CHARS = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
_BIDI = re.compile(f"[{_BIDI_CHARS}]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # from undecodable bytes: cannot be printed


def display_safe(text: str, *, newlines: bool = True) -> str:
    """Paper text or a file name made inert for a terminal or a page.

    Removes ANSI/OSC escape sequences, C0 and C1 control characters and bidi controls;
    keeps every ordinary character (accents, CJK, math). With ``newlines`` a line break
    stays a line break (CR LF and a lone CR become LF) and a tab stays a tab; without it
    both become a space, for one-line output such as a title or a table cell.

    >>> display_safe("ok\\x1b[2J\\x1b]8;;http://x\\x07link\\x1b]8;;\\x07 \\u202efdp.exe\\x00")
    'oklink fdp.exe'
    >>> display_safe("Café 模型\\r\\nline 2", newlines=False)
    'Café 模型 line 2'
    """
    if text.isprintable():  # the common case: nothing to do (isprintable is False for \\n)
        return text
    text = _ANSI.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not newlines:
        text = text.replace("\n", " ").replace("\t", " ")
    text = _CONTROL.sub("", text)
    text = _BIDI.sub("", text)
    return _LONE_SURROGATE.sub("\ufffd", text)


def json_safe(json_text: str) -> str:
    """JSON text whose strings show inertly in a terminal: the control and bidi
    characters that ``json.dumps(..., ensure_ascii=False)`` leaves raw (C1 controls,
    DEL, bidi overrides) written as ``\\uXXXX`` escapes. The data is unchanged: a JSON
    parser reads the same strings back.

    >>> json_safe('{"t": "\\u202efdp.exe\\x9b2J"}')
    '{"t": "\\\\u202efdp.exe\\\\u009b2J"}'
    """
    return re.sub(f"[\\x7f-\\x9f{_BIDI_CHARS}]", lambda m: f"\\u{ord(m.group()):04x}",
                  json_text)
