#!/usr/bin/env python3
"""Builds the training corpus of the default model: the King James Bible from Debian's bible-kjv.

    python3 tools/train/corpus.py --out build/train/data   -> train.txt, heldout.txt

Source: `bible -f "Gen1:1-Rev22:21"` (package bible-kjv, installed by scripts/install-deps.sh).
It prints one verse per line, "<Book><chapter>:<verse> <text>", e.g.
"Ge1:1 In the beginning God created the heaven and the earth." - 31,102 lines, 4.4 MB, ASCII,
no headings (the package has no psalm titles or book headings as separate lines).

Text rules (pure functions of the source, no randomness):
  * the reference "<Book><chapter>:<verse> " is removed, runs of spaces become one space and the
    verse is stripped (the source has two double spaces and one trailing space);
  * one verse per line; a chapter ends with an empty line (so "\n\n" marks chapter breaks);
  * the output is the text only: no book names, chapter or verse numbers.
Split rule: chapters are numbered 0, 1, 2, ... in canonical order (Genesis 1 = 0, Revelation 22 =
1188); chapter k goes to heldout.txt when k % 20 == 19 (59 of 1,189 chapters, ~5 % of the bytes),
every other chapter to train.txt, each file in canonical order.
Pure standard library.
"""
import argparse
import os
import re
import subprocess
import sys

RANGE = "Gen1:1-Rev22:21"
HELDOUT_EVERY = 20  # chapter k is held out when k % HELDOUT_EVERY == HELDOUT_EVERY - 1

_REF = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")


def read_bible(bible="bible"):
    """Returns the verses as a list of (book, chapter, verse, text), in canonical order."""
    try:
        out = subprocess.run([bible, "-f", RANGE], check=True, stdout=subprocess.PIPE).stdout
    except FileNotFoundError:
        sys.exit(
            "corpus.py: '%s' not found: install Debian's bible-kjv "
            "(bash scripts/install-deps.sh)" % bible
        )
    verses = []
    for n, line in enumerate(out.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        m = _REF.match(line)
        if m is None:
            sys.exit("corpus.py: line %d of `bible -f %s` has no verse reference: %r"
                     % (n, RANGE, line[:80]))  # fmt: skip
        text = " ".join(m.group(4).split())
        if text:
            verses.append((m.group(1), int(m.group(2)), int(m.group(3)), text))
    return verses


def chapters(verses):
    """Groups verses into chapters: a list of lists of verse texts, in order."""
    result, key = [], None
    for book, chap, _, text in verses:
        if (book, chap) != key:
            result.append([])
            key = (book, chap)
        result[-1].append(text)
    return result


def split(chaps):
    """Returns (train_text, heldout_text) by the documented rule."""
    train, held = [], []
    for k, verses in enumerate(chaps):
        block = "\n".join(verses) + "\n\n"
        (held if k % HELDOUT_EVERY == HELDOUT_EVERY - 1 else train).append(block)
    return "".join(train), "".join(held)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output directory (train.txt, heldout.txt)")
    ap.add_argument("--bible", default="bible", help="the bible-kjv program (default: bible)")
    args = ap.parse_args()

    verses = read_bible(args.bible)
    chaps = chapters(verses)
    if len(verses) != 31102 or len(chaps) != 1189:
        sys.exit("corpus.py: expected 31102 verses in 1189 chapters, got %d in %d"
                 % (len(verses), len(chaps)))  # fmt: skip
    train, held = split(chaps)
    os.makedirs(args.out, exist_ok=True)
    for name, text in (("train.txt", train), ("heldout.txt", held)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    nt, nh = len(train.encode("utf-8")), len(held.encode("utf-8"))
    print(
        "corpus.py: %d verses, %d chapters -> %s: train.txt %d bytes, heldout.txt %d bytes "
        "(%.2f %%)"
        % (len(verses), len(chaps), args.out, nt, nh, 100.0 * nh / (nt + nh))
    )


if __name__ == "__main__":
    main()
