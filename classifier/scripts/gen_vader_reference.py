#!/usr/bin/env python3
"""Vendor the VADER 3.3.2 lexicons and record reference outputs for the Rust port.

Run once from the repository root (inside a venv made from requirements.txt):

    python classifier/scripts/gen_vader_reference.py

It
  * copies vader_lexicon.txt, emoji_utf8_lexicon.txt and the MIT licence from the
    installed vaderSentiment==3.3.2 distribution into classifier/data/vader/, and
  * runs SentimentIntensityAnalyzer.polarity_scores on every sentence of
    classifier/data/reference/sentences_*.txt plus a few programmatic edge cases
    (tabs, newlines, exotic whitespace, the empty string), writing
    classifier/data/reference/vader_reference.jsonl.

Each JSONL record holds the package's public (rounded) output and the same
scores before rounding ("raw"), obtained by shadowing ``round`` inside the
vaderSentiment module, so the Rust parity test can compare both to 1e-9.
"""

import hashlib
import importlib.metadata as md
import json
import platform
import shutil
import sys
from pathlib import Path

import vaderSentiment.vaderSentiment as vs

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
EXPECTED_VERSION = "3.3.2"

# Cases that a one-sentence-per-line file cannot hold.
EDGE_CASES = [
    "",
    "   ",
    "\t\n",
    "good\tbad",
    "good\nbad\n",
    "line one is great\nline two is awful",
    "nice\u00a0day",  # no-break space separates words for str.split()
    "nice\u2003day\u3000!",
    "happy\x1cdays",  # information separator: whitespace for Python
    "  padded and happy  ",
    "\u01c5ungla GOOD",  # titlecase letter: not upper for str.isupper()
    "ΣΟΦΟΣ GOOD Σ",  # Greek capitals and final sigma when lowercasing
    "I \u2764\ufe0f you",
    "😀😀😀!!!",
    "good!!!!!!!!!!",
    "bad??????",
    "ok?!?!?!",
]


def load_sentences():
    texts = []
    for path in sorted((DATA / "reference").glob("sentences_*.txt")):
        texts.extend(line.rstrip("\n") for line in path.open(encoding="utf-8"))
    return texts + EDGE_CASES


def vendor_lexicons():
    dist = md.distribution("vaderSentiment")
    if dist.version != EXPECTED_VERSION:
        sys.exit(f"need vaderSentiment=={EXPECTED_VERSION}, found {dist.version}")
    out = DATA / "vader"
    out.mkdir(parents=True, exist_ok=True)
    pkg = Path(vs.__file__).parent
    for name in ("vader_lexicon.txt", "emoji_utf8_lexicon.txt"):
        shutil.copyfile(pkg / name, out / name)
    licence = next(f for f in dist.files if f.name.upper().startswith("LICENSE"))
    shutil.copyfile(dist.locate_file(licence), out / "LICENSE")
    for name in ("vader_lexicon.txt", "emoji_utf8_lexicon.txt", "LICENSE"):
        digest = hashlib.sha256((out / name).read_bytes()).hexdigest()
        print(f"vendored {name} sha256={digest}")


def raw_scores(analyzer, text):
    """polarity_scores without the final rounding."""
    vs.round = lambda x, _ndigits: x
    try:
        return analyzer.polarity_scores(text)
    finally:
        del vs.round


def main():
    vendor_lexicons()
    analyzer = vs.SentimentIntensityAnalyzer()
    texts = load_sentences()
    out = DATA / "reference" / "vader_reference.jsonl"
    with out.open("w", encoding="utf-8") as f:
        for text in texts:
            public = analyzer.polarity_scores(text)
            raw = raw_scores(analyzer, text)
            record = {"text": text, **public, "raw": raw}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} records to {out.relative_to(ROOT.parent)} "
          f"(CPython {platform.python_version()})")


if __name__ == "__main__":
    main()
