#!/usr/bin/env python3
"""Builds the tokenizer reference corpus (>= 1 MB of UTF-8) from material installed on a
Debian 12 machine by scripts/install-deps.sh; nothing is downloaded. Deterministic for a given
machine and source tree: files are read in sorted order, generated parts use a fixed LCG.

Categories (each printed with its byte count):
  prose       /usr/share/common-licenses (English legal prose)
  code        this repository's src/ and /usr/include/*.h
  chinese     Debian manpages-zh (zh_CN, zh_TW), gzip'd roff
  japanese    Debian manpages-ja, gzip'd roff
  emoji       /usr/share/unicode/emoji/emoji-test.txt (package unicode-data)
  digits      generated digit runs (1..40 digits, decimals, dates, grouped numbers)
  whitespace  generated runs of spaces, tabs, newlines and Unicode spaces around words
  crlf        English prose with CRLF line endings

--max-unicode-age X.Y drops every line that holds a character not assigned in Unicode X.Y
(per /usr/share/unicode/DerivedAge.txt). The regex engine's Unicode tables (PCRE2 in Debian 12:
14.0) decide the categories \\p{L}, \\p{P}, ...; node's V8 knows a newer Unicode, so characters
assigned later are letters/symbols for the JS reference and unassigned for us. Such lines are
outside what the two implementations can agree on.

Usage: make-tokenizer-corpus.py --out FILE [--src-dir DIR] [--max-unicode-age 14.0]
"""
import argparse
import glob
import gzip
import os
import sys

MIN_TOTAL = 1_000_000
# category -> (target bytes, minimum bytes for the corpus to count as covering it)
TARGETS = {
    "prose": (260_000, 150_000),
    "code": (260_000, 150_000),
    "chinese": (180_000, 100_000),
    "japanese": (180_000, 100_000),
    "emoji": (120_000, 60_000),
    "digits": (50_000, 30_000),
    "whitespace": (50_000, 30_000),
    "crlf": (60_000, 30_000),
}


def read_text(path):
    """File contents as str, or None if unreadable or not UTF-8."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError):
        return None


def take(paths, target):
    """Lines of the files in order until about `target` bytes."""
    out, size = [], 0
    for p in paths:
        if size >= target:
            break
        t = read_text(p)
        if not t:
            continue
        for line in t.splitlines(keepends=True):
            if size >= target:
                break
            out.append(line if line.endswith("\n") else line + "\n")
            size += len(out[-1].encode("utf-8"))
    return "".join(out)


class Lcg:
    """Deterministic generator (Numerical Recipes constants)."""

    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFF

    def next(self, n):
        self.s = (self.s * 1664525 + 1013904223) & 0xFFFFFFFF
        return (self.s >> 8) % n


def gen_digits(target):
    r = Lcg(12345)
    parts, size = [], 0
    while size < target:
        kind = r.next(6)
        if kind == 0:
            s = "".join(str(r.next(10)) for _ in range(1 + r.next(40)))
        elif kind == 1:
            s = "%d.%0*d" % (r.next(100000), 1 + r.next(6), r.next(10 ** 6) % 10 ** 6)
        elif kind == 2:
            s = "%04d-%02d-%02d %02d:%02d:%02d" % (1900 + r.next(200), 1 + r.next(12),
                                                   1 + r.next(28), r.next(24), r.next(60),
                                                   r.next(60))
        elif kind == 3:
            s = "{:,}".format(r.next(10 ** 9) * 1000 + r.next(1000))
        elif kind == 4:
            s = "v%d.%d.%d" % (r.next(20), r.next(100), r.next(1000))
        else:
            s = "+%d (%03d) %03d-%04d" % (r.next(100), r.next(1000), r.next(1000), r.next(10000))
        sep = [" ", ", ", "\n", "; ", " = ", "x", "%\n"][r.next(7)]
        parts.append(s + sep)
        size += len(s) + len(sep)
    return "".join(parts)


def gen_whitespace(target):
    r = Lcg(777)
    words = ["alpha", "beta", "gamma", "delta", "if", "for", "return", "x", "y1", "数据", "テスト"]
    spaces = [" ", "\t", "\n", "\u00a0", "\u3000", "\u2003", "\u2009", "\r\n", "\v", "\f"]
    parts, size = [], 0
    while size < target:
        kind = r.next(5)
        if kind == 0:
            ws = " " * (1 + r.next(64))
        elif kind == 1:
            ws = "\t" * (1 + r.next(8))
        elif kind == 2:
            ws = "\n" * (1 + r.next(6))
        elif kind == 3:
            ws = "".join(spaces[r.next(len(spaces))] for _ in range(1 + r.next(12)))
        else:
            ws = " " * (1 + r.next(4)) + "\n" + "    " * r.next(5)
        w = words[r.next(len(words))]
        parts.append(ws + w)
        size += len((ws + w).encode("utf-8"))
    return "".join(parts) + "\n"


def gen_emoji(target):
    path = "/usr/share/unicode/emoji/emoji-test.txt"
    t = read_text(path)
    if t is None:
        return ""
    lines = t.splitlines(keepends=True)
    total = len(t.encode("utf-8"))
    stride = max(1, total // target)
    return "".join(lines[i] for i in range(0, len(lines), stride))


def load_ages(path="/usr/share/unicode/DerivedAge.txt"):
    """[(lo, hi, (major, minor))] sorted, or None if the file is missing."""
    t = read_text(path)
    if t is None:
        return None
    ranges = []
    for line in t.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        cps, age = [x.strip() for x in line.split(";")]
        lo, _, hi = cps.partition("..")
        major, minor = age.split(".")
        ranges.append((int(lo, 16), int(hi or lo, 16), (int(major), int(minor))))
    ranges.sort()
    return ranges


def make_age_filter(max_age):
    ranges = load_ages()
    if ranges is None:
        sys.exit("make-tokenizer-corpus: /usr/share/unicode/DerivedAge.txt missing "
                 "(install unicode-data: scripts/install-deps.sh)")
    major, minor = (int(x) for x in max_age.split(".")[:2])
    limit = (major, minor)
    allowed = bytearray(0x110000)
    for lo, hi, age in ranges:
        if age <= limit:
            allowed[lo:hi + 1] = b"\x01" * (hi + 1 - lo)
    cache = {}

    def ok(ch):
        v = cache.get(ch)
        if v is None:
            v = cache[ch] = bool(allowed[ord(ch)])
        return v

    def filt(text):
        kept, dropped = [], 0
        for line in text.splitlines(keepends=True):
            if all(ok(c) for c in line):
                kept.append(line)
            else:
                dropped += 1
        return "".join(kept), dropped

    return filt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--src-dir", default=os.path.join(os.path.dirname(__file__), "..", "src"))
    ap.add_argument("--max-unicode-age", default=None)
    args = ap.parse_args()

    licenses = sorted(glob.glob("/usr/share/common-licenses/*"))
    src = sorted(glob.glob(os.path.join(args.src_dir, "**", "*.[ch]pp"), recursive=True))
    inc = sorted(glob.glob("/usr/include/*.h"))
    zh = sorted(glob.glob("/usr/share/man/zh_CN/man*/*.gz")) + \
        sorted(glob.glob("/usr/share/man/zh_TW/man*/*.gz"))
    ja = sorted(glob.glob("/usr/share/man/ja/man*/*.gz"))

    code_t = TARGETS["code"][0]
    crlf_src = take(list(reversed(licenses)), TARGETS["crlf"][0])
    cats = {
        "prose": take(licenses, TARGETS["prose"][0]),
        "code": take(src, code_t // 2) + take(inc, code_t // 2),
        "chinese": take(zh[: len(zh) // 2 * 2 : 2], TARGETS["chinese"][0] * 2 // 3)
        + take(zh[1::2], TARGETS["chinese"][0] // 3),
        "japanese": take(ja, TARGETS["japanese"][0]),
        "emoji": gen_emoji(TARGETS["emoji"][0]),
        "digits": gen_digits(TARGETS["digits"][0]),
        "whitespace": gen_whitespace(TARGETS["whitespace"][0]),
        "crlf": crlf_src.replace("\r\n", "\n").replace("\n", "\r\n"),
    }

    dropped_total = 0
    if args.max_unicode_age:
        filt = make_age_filter(args.max_unicode_age)
        for k in cats:
            cats[k], dropped = filt(cats[k])
            dropped_total += dropped

    out = []
    failed = False
    print("tokenizer corpus (bytes per category):")
    for k, text in cats.items():
        n = len(text.encode("utf-8"))
        lo = TARGETS[k][1]
        flag = "" if n >= lo else "   <-- below the minimum of %d" % lo
        failed |= n < lo
        print("  %-11s %9d%s" % (k, n, flag))
        out.append(text)
    corpus = "\n\n".join(out)
    data = corpus.encode("utf-8")
    print("  %-11s %9d" % ("total", len(data)))
    if args.max_unicode_age:
        print("  lines dropped for characters newer than Unicode %s: %d"
              % (args.max_unicode_age, dropped_total))
    if len(data) < MIN_TOTAL:
        print("make-tokenizer-corpus: total below %d bytes" % MIN_TOTAL)
        failed = True
    if failed:
        print("make-tokenizer-corpus: missing material; run scripts/install-deps.sh",
              file=sys.stderr)
        return 1
    with open(args.out, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
