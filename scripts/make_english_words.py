"""Write rag/data/english_words.txt: general English words, most frequent first.

The list that tells a common English word ("sluggish", "job", "don") from a
distinctive one (a name, an acronym, a rare technical term) in rag/english.py.
It is cut from wordfreq's English list (Robyn Speer et al., wordfreq 3.1.1: frequencies
from Wikipedia, subtitles, news, books, web text, Twitter and Reddit; its data is
CC-BY-SA 4.0, so is this derived list). wordfreq is needed only to run this script:

    pip install wordfreq==3.1.1 && python scripts/make_english_words.py

Each line is the word and its stem as rag.text.stem makes it (read without stemming, so
loading takes milliseconds; tests/rag/test_english.py checks the stems are current:
rerun this script after a change of rag.text.ANALYZER). A contraction's pieces are
listed at the contraction's rank ("don't" -> "don"), since
the tokenizer cuts a question's "don't" into "don".
"""

from __future__ import annotations

import sys
from pathlib import Path

N = 50_000
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "rag" / "data" / "english_words.txt"
sys.path.insert(0, str(ROOT))  # rag, from this checkout


def main() -> None:
    import wordfreq

    from rag.text import stem

    seen: set[str] = set()
    out: list[str] = []
    for word in wordfreq.top_n_list("en", N):
        for piece in [word, *word.split("'")]:
            piece = piece.strip("'")
            if len(piece) >= 2 and piece.isalpha() and piece not in seen:
                seen.add(piece)
                out.append(piece)
    header = (f"# wordfreq 3.1.1 English top {N:,} (CC-BY-SA 4.0), most frequent first, "
              "word<TAB>stem; made by scripts/make_english_words.py\n")
    OUT.write_text(header + "".join(f"{w}\t{stem(w)}\n" for w in out), encoding="utf-8")
    print(f"{len(out):,} words -> {OUT}")


if __name__ == "__main__":
    main()
