#!/usr/bin/env python3
"""Byte-level BPE tokenizer of the default model: trainer, encoder, decoder (pure standard library).

    python3 tools/train/bpe.py train  --text build/train/data/train.txt --vocab 6144 \\
                                      --out build/train/tokenizer.json
    python3 tools/train/bpe.py encode --tokenizer build/train/tokenizer.json \\
                                      --text build/train/data/heldout.txt --out heldout.ids.npy
    python3 tools/train/bpe.py decode --tokenizer T.json --ids F.ids.npy          # text to stdout

    from bpe import Tokenizer
    tok = Tokenizer.load("build/train/tokenizer.json")
    ids = tok.encode("In the beginning")          # no BOS/EOS added
    tok.decode(ids); tok.bos_id; tok.eos_id; tok.vocab_size

The output is a Hugging Face tokenizer.json that dsv4's tokenizer (src/tokenizer/) and the JS port
of HF tokenizers (tests/js) load; both give exactly the ids of `Tokenizer.encode` here (checked
on the whole corpus; see tools/train/README.md "Corpus and tokenizer").

Layout of the vocabulary (vocab_size ids in total, 6144 for the default model):
  * ids 0..15: added tokens, as dsv4-make-model's byte tokenizer (src/model/make_model.cpp):
    0 BOS "<｜begin▁of▁sentence｜>", 1 EOS "<｜end▁of▁sentence｜>", 2 "<｜User｜>",
    3 "<｜Assistant｜>", 4 "<think>", 5 "</think>", 6 "｜DSML｜", 7 "<｜latest_reminder｜>",
    8 "<｜▁pad▁｜>", 9 "<｜action｜>", 10..15 "<｜reserved_N｜>"; special = BOS, EOS, pad
    and the reserved ones (as V4: the chat-structure tokens are non-special); all have
    normalized = false;
  * ids 16..271: the 256 bytes, in byte order, spelled with the GPT-2 byte->character map;
  * ids 272..: one token per merge, in merge order (merge rank r creates id 272 + r);
  * if the text runs out of pairs before vocab_size is reached, the rest are special added
    tokens "<｜unused_N｜>" (never on the default corpus).
Like HF's model.vocab of DeepSeek-V3, "vocab" lists the added tokens too.

Normalizer and pre-tokenizer are DeepSeek-V3/V4's own (spec section 6.1): an empty normalizer
Sequence, then Split(\\p{N}{1,3}), Split(CJK runs), Split(the V3 word/punctuation/space regex),
each Isolated, then ByteLevel without prefix space or regex. Python's `re` has no \\p{..}, so
the patterns are translated for Python (never for the tokenizer.json, which carries the original
patterns): \\p{L}, \\p{M}, \\p{N}, \\p{P}, \\p{S} become explicit classes built from
`unicodedata` (Python 3.11: Unicode 14.0, the version of Debian 12's PCRE2 that dsv4 uses), and
\\s / \\S become the Unicode White_Space set (Oniguruma's and dsv4's meaning; Python's own \\s
also matches U+001C..U+001F). The KJV corpus is ASCII, where every engine agrees anyway.

Encoding = HF's: added tokens cut out first (leftmost-longest), each remaining span
pre-tokenised, each piece merged by BPE in ascending merge rank, leftmost first among equal
ranks (a heap on (rank, position), as HF's Word::merge_all and dsv4's bpe.cpp).

Training: the pre-tokenised pieces of the training text are counted once; merges are then
learned over piece types (each weighted by its count). Each step merges the most frequent
adjacent pair; ties go to the pair whose (left, right) spellings sort first, so the result is
a pure function of the text. A pair whose concatenation is already a token (it can arise in
another way) is never merged, so merges and new tokens correspond one to one.
"""
import argparse
import heapq
import json
import os
import re
import struct
import sys
import time
import unicodedata
from collections import Counter

# ---------------------------------------------------------------------------------------------
# Constants of the format

ADDED = [
    (0, "<｜begin▁of▁sentence｜>"),
    (1, "<｜end▁of▁sentence｜>"),
    (2, "<｜User｜>"),
    (3, "<｜Assistant｜>"),
    (4, "<think>"),
    (5, "</think>"),
    (6, "｜DSML｜"),
    (7, "<｜latest_reminder｜>"),
    (8, "<｜▁pad▁｜>"),
    (9, "<｜action｜>"),
] + [(u, "<｜reserved_%d｜>" % u) for u in range(10, 16)]
SPECIAL_IDS = {0, 1, 8} | set(range(10, 16))
BOS_ID, EOS_ID = 0, 1
FIRST_BYTE_ID = 16
FIRST_MERGE_ID = FIRST_BYTE_ID + 256

# DeepSeek-V3/V4 pre-tokenizer patterns, verbatim (the CR/LF in the third are literal characters).
PAT_DIGITS = "\\p{N}{1,3}"
PAT_CJK = "[一-龥぀-ゟ゠-ヿ]+"
PAT_MAIN = (
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+"
    "|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\r\n]*"
    "|\\s*[\r\n]+"
    "|\\s+(?!\\S)"
    "|\\s+"
)
PRE_PATTERNS = [PAT_DIGITS, PAT_CJK, PAT_MAIN]

# Unicode White_Space (PropList.txt; unchanged since Unicode 6.3).
_WHITE_SPACE = [
    (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
    (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
]  # fmt: skip


def byte_to_char():
    """GPT-2's reversible byte -> printable character map used by ByteLevel (a list of 256)."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return [table[b] for b in range(256)]


BYTE_TO_CHAR = byte_to_char()
CHAR_TO_BYTE = {c: b for b, c in enumerate(BYTE_TO_CHAR)}

# ---------------------------------------------------------------------------------------------
# Pattern translation for Python's re


def _class_escape(cp):
    return "\\u%04x" % cp if cp <= 0xFFFF else "\\U%08x" % cp


def _ranges_text(ranges):
    out = []
    for a, b in ranges:
        out.append(_class_escape(a) if a == b else _class_escape(a) + "-" + _class_escape(b))
    return "".join(out)


_CATEGORY_CACHE = {}


def _category_ranges(major):
    """Code point ranges whose general category starts with `major` (e.g. "L")."""
    if not _CATEGORY_CACHE:
        acc = {}
        for cp in range(0x110000):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            m = unicodedata.category(chr(cp))[0]
            lst = acc.setdefault(m, [])
            if lst and lst[-1][1] == cp - 1:
                lst[-1][1] = cp
            else:
                lst.append([cp, cp])
        for m, lst in acc.items():
            _CATEGORY_CACHE[m] = _ranges_text(lst)
    if major not in _CATEGORY_CACHE or major not in "LMNPSZC":
        raise ValueError("unsupported \\p{%s}" % major)
    return _CATEGORY_CACHE[major]


def python_regex(pattern):
    """Translates an Oniguruma pattern of the forms used above into an equivalent Python regex."""
    ws = _ranges_text(_WHITE_SPACE)
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nx = pattern[i + 1]
            if nx == "p":
                if pattern[i + 2] != "{":
                    raise ValueError("unsupported \\p form in %r" % pattern)
                j = pattern.index("}", i)
                cls = _category_ranges(pattern[i + 3 : j])
                out.append(cls if in_class else "[" + cls + "]")
                i = j + 1
                continue
            if nx in "sS":
                if in_class and nx == "S":
                    raise ValueError("unsupported \\S inside a class in %r" % pattern)
                out.append(ws if in_class else ("[" if nx == "s" else "[^") + ws + "]")
                i += 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            if in_class:
                out.append("\\[")
            else:
                in_class = True
                out.append(c)
                if pattern[i + 1 : i + 2] == "^":
                    out.append("^")
                    i += 1
            i += 1
            continue
        if c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return re.compile("".join(out))


# ---------------------------------------------------------------------------------------------
# Pre-tokenisation


class PreTokenizer:
    def __init__(self):
        self.steps = [python_regex(p) for p in PRE_PATTERNS]

    @staticmethod
    def _split_isolated(rx, s, out):
        last = 0
        for m in rx.finditer(s):
            a, b = m.span()
            if a > last:
                out.append(s[last:a])
            if b > a:
                out.append(s[a:b])
            last = b
        if last < len(s):
            out.append(s[last:])

    def split(self, text):
        """The pieces of `text` (a str without added tokens), in order, as str."""
        pieces = [text] if text else []
        for rx in self.steps:
            nxt = []
            for p in pieces:
                self._split_isolated(rx, p, nxt)
            pieces = nxt
        return pieces


def to_byte_level(piece):
    return "".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# Tokenizer


class Tokenizer:
    """Encoder/decoder for a tokenizer.json written by this module (or any file of the same shape:
    byte-level BPE, DeepSeek pre-tokenizer, added tokens)."""

    def __init__(self, vocab, merges, added):
        # vocab: spelling -> id (BPE part and, optionally, added tokens); merges: [(a, b)];
        # added: [(id, content, special)]
        self.vocab = dict(vocab)
        self.added = sorted(added)
        for tid, content, _ in self.added:
            self.vocab.setdefault(content, tid)
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.added_ids = {tid for tid, _, _ in self.added}
        self.special_ids = {tid for tid, _, sp in self.added if sp}
        self.ranks = {}
        for r, (a, b) in enumerate(merges):
            self.ranks.setdefault((a, b), r)
        self.merges = list(merges)
        self.vocab_size = max(self.id_to_token) + 1
        self.bos_id, self.eos_id = BOS_ID, EOS_ID
        self._pre = PreTokenizer()
        alts = sorted((c for _, c, _ in self.added), key=lambda s: (-len(s), s))
        self._added_rx = re.compile("|".join(re.escape(a) for a in alts)) if alts else None
        self._added_id = {c: tid for tid, c, _ in self.added}
        self._cache = {}

    # -- loading / saving
    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        m = j["model"]
        merges = [tuple(x.split(" ", 1)) if isinstance(x, str) else tuple(x) for x in m["merges"]]
        added = [(a["id"], a["content"], bool(a.get("special", False))) for a in j["added_tokens"]]
        return cls(m["vocab"], merges, added)

    def to_json(self):
        def entry(tid, content, special):
            return {
                "id": tid,
                "content": content,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": special,
            }

        def split(p):
            return {"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated",
                    "invert": False}  # fmt: skip

        def byte_level(**kw):
            return dict({"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                         "use_regex": False}, **kw)  # fmt: skip

        vocab = sorted(self.vocab.items(), key=lambda kv: kv[1])
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [entry(t, c, s) for t, c, s in self.added],
            "normalizer": {"type": "Sequence", "normalizers": []},
            "pre_tokenizer": {
                "type": "Sequence",
                "pretokenizers": [split(p) for p in PRE_PATTERNS]
                + [byte_level()],
            },
            "post_processor": byte_level(add_prefix_space=True, trim_offsets=False, use_regex=True),
            "decoder": byte_level(add_prefix_space=True, use_regex=True),
            "model": {
                "type": "BPE",
                "dropout": None,
                "unk_token": None,
                "continuing_subword_prefix": None,
                "end_of_word_suffix": None,
                "fuse_unk": False,
                "byte_fallback": False,
                "vocab": dict(vocab),
                "merges": ["%s %s" % ab for ab in self.merges],
            },
        }

    def save(self, path):
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            json.dump(self.to_json(), f, ensure_ascii=False, indent=None, separators=(",", ":"))
            f.write("\n")

    # -- encoding
    def _bpe(self, piece):
        """Ids of one byte-level piece (str of GPT-2 characters)."""
        hit = self._cache.get(piece)
        if hit is not None:
            return hit
        syms = list(piece)
        n = len(syms)
        ranks = self.ranks
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []
        for i in range(n - 1):
            r = ranks.get((syms[i], syms[i + 1]))
            if r is not None:
                heap.append((r, i, syms[i], syms[i + 1]))
        heapq.heapify(heap)
        while heap:
            r, i, a, b = heapq.heappop(heap)
            if not alive[i] or syms[i] != a:
                continue
            j = nxt[i]
            if j < 0 or syms[j] != b:
                continue
            syms[i] = a + b
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] >= 0:
                prv[nxt[j]] = i
            p, q = prv[i], nxt[i]
            if p >= 0:
                rr = ranks.get((syms[p], syms[i]))
                if rr is not None:
                    heapq.heappush(heap, (rr, p, syms[p], syms[i]))
            if q >= 0:
                rr = ranks.get((syms[i], syms[q]))
                if rr is not None:
                    heapq.heappush(heap, (rr, i, syms[i], syms[q]))
        out, k = [], 0
        while k >= 0:
            tid = self.vocab.get(syms[k])
            if tid is None:  # a byte missing from the vocabulary: dropped, as HF without unk
                pass
            else:
                out.append(tid)
            k = nxt[k]
        if len(piece) < 256:
            if len(self._cache) > 200000:
                self._cache.clear()
            self._cache[piece] = out
        return out

    def _encode_plain(self, text, out):
        for piece in self._pre.split(text):
            out.extend(self._bpe(to_byte_level(piece)))

    def encode(self, text):
        """Token ids of `text` (str), HF `encode(text, add_special_tokens=False)`."""
        out = []
        if self._added_rx is None:
            self._encode_plain(text, out)
            return out
        last = 0
        for m in self._added_rx.finditer(text):
            if m.start() > last:
                self._encode_plain(text[last : m.start()], out)
            out.append(self._added_id[m.group()])
            last = m.end()
        if last < len(text):
            self._encode_plain(text[last:], out)
        return out

    def decode(self, ids, skip_special=False):
        """Text of `ids`: bytes of every token concatenated, invalid UTF-8 replaced by U+FFFD."""
        buf = bytearray()
        for tid in ids:
            tok = self.id_to_token.get(tid)
            if tok is None:
                raise ValueError("decode: unknown id %d" % tid)
            if tid in self.added_ids:
                if skip_special and tid in self.special_ids:
                    continue
                buf += tok.encode("utf-8")
            elif all(c in CHAR_TO_BYTE for c in tok):
                buf += bytes(CHAR_TO_BYTE[c] for c in tok)
            else:
                buf += tok.encode("utf-8")
        return buf.decode("utf-8", errors="replace")

    def token_bytes(self, tid):
        """Raw bytes a token stands for (added tokens: their UTF-8)."""
        tok = self.id_to_token[tid]
        if tid in self.added_ids:
            return tok.encode("utf-8")
        return bytes(CHAR_TO_BYTE[c] for c in tok)


# ---------------------------------------------------------------------------------------------
# Training


def train(text, vocab_size, log=None):
    """Learns merges on `text`; returns a Tokenizer with exactly `vocab_size` ids."""
    if vocab_size < FIRST_MERGE_ID:
        raise ValueError("vocab_size must be at least %d" % FIRST_MERGE_ID)
    pre = PreTokenizer()
    counts = Counter(pre.split(text))
    bl = Counter()
    for piece, c in counts.items():
        bl[to_byte_level(piece)] += c
    # symbols are ids into `spell` (0..255 = bytes in GPT-2 spelling)
    spell = list(BYTE_TO_CHAR)
    known = set(spell)
    char_id = {c: i for i, c in enumerate(spell)}
    words = [[char_id[c] for c in w] for w in bl]
    wcount = list(bl.values())

    pair_count = Counter()
    where = {}
    for wi, w in enumerate(words):
        c = wcount[wi]
        for k in range(len(w) - 1):
            p = (w[k], w[k + 1])
            pair_count[p] += c
            where.setdefault(p, set()).add(wi)

    def key(p, c):
        return (-c, spell[p[0]], spell[p[1]], p[0], p[1])

    heap = [key(p, c) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    blocked = set()
    n_merges = vocab_size - FIRST_MERGE_ID
    t0 = time.time()
    while len(merges) < n_merges and heap:
        negc, _, _, a, b = heapq.heappop(heap)
        p = (a, b)
        if p in blocked or pair_count.get(p, 0) != -negc or negc == 0:
            continue
        merged = spell[a] + spell[b]
        if merged in known:
            blocked.add(p)
            continue
        new_id = len(spell)
        spell.append(merged)
        known.add(merged)
        merges.append((spell[a], spell[b]))
        changed = set()
        for wi in list(where.get(p, ())):
            w = words[wi]
            c = wcount[wi]
            # remove the word's old pairs
            for k in range(len(w) - 1):
                q = (w[k], w[k + 1])
                pair_count[q] -= c
                changed.add(q)
                s = where.get(q)
                if s is not None:
                    s.discard(wi)
            nw, k = [], 0
            while k < len(w):
                if k + 1 < len(w) and w[k] == a and w[k + 1] == b:
                    nw.append(new_id)
                    k += 2
                else:
                    nw.append(w[k])
                    k += 1
            words[wi] = nw
            for k in range(len(nw) - 1):
                q = (nw[k], nw[k + 1])
                pair_count[q] += c
                changed.add(q)
                where.setdefault(q, set()).add(wi)
        for q in changed:
            c = pair_count[q]
            if c <= 0:
                pair_count.pop(q, None)
                where.pop(q, None)
            elif q not in blocked:
                heapq.heappush(heap, key(q, c))
        if log and len(merges) % 1000 == 0:
            log("bpe: %d merges (%.1f s)" % (len(merges), time.time() - t0))
    vocab = {c: FIRST_BYTE_ID + i for i, c in enumerate(spell)}
    added = [(tid, c, tid in SPECIAL_IDS) for tid, c in ADDED]
    next_id = FIRST_BYTE_ID + len(spell)
    if next_id < vocab_size and log:
        log("bpe: the text has no more pairs after %d merges; %d unused ids"
            % (len(merges), vocab_size - next_id))  # fmt: skip
    for u in range(next_id, vocab_size):
        added.append((u, "<｜unused_%d｜>" % u, True))
    return Tokenizer(vocab, merges, added)


# ---------------------------------------------------------------------------------------------
# .npy I/O (format version 1.0; stdlib only, numpy reads it)


def save_ids_npy(path, ids, vocab_size=65536):
    dtype = "<u2" if vocab_size <= 65536 else "<i4"
    fmt = "H" if dtype == "<u2" else "i"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (dtype, len(ids))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%d%s" % (len(ids), fmt), *ids))


def load_ids_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError("%s: not a .npy file" % path)
    major = data[6]
    if major == 1:
        hlen, off = struct.unpack("<H", data[8:10])[0], 10
    else:
        hlen, off = struct.unpack("<I", data[8:12])[0], 12
    header = data[off : off + hlen].decode("latin1")
    body = data[off + hlen :]
    m = re.search(r"'descr':\s*'([<|]?)([uif])(\d)'", header)
    if m is None or m.group(2) == "f":
        raise ValueError("%s: unsupported dtype in header %r" % (path, header))
    codes = {("u", "1"): "B", ("u", "2"): "H", ("u", "4"): "I", ("u", "8"): "Q",
             ("i", "1"): "b", ("i", "2"): "h", ("i", "4"): "i", ("i", "8"): "q"}  # fmt: skip
    code = codes[(m.group(2), m.group(3))]
    n = len(body) // struct.calcsize(code)
    return list(struct.unpack("<%d%s" % (n, code), body[: n * struct.calcsize(code)]))


# ---------------------------------------------------------------------------------------------
# Agreement check with dsv4 and the JS reference

_JS_ENCODE = r"""
const fs = require("fs");
const { TokenizerLoader } = require("@lenml/tokenizers");
const [tj, txt, out] = process.argv.slice(2);
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(tj, "utf8")),
  tokenizerConfig: { tokenizer_class: "PreTrainedTokenizerFast", add_bos_token: false,
    add_eos_token: false, legacy: true, clean_up_tokenization_spaces: false,
    bos_token: "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
    eos_token: "<\uff5cend\u2581of\u2581sentence\uff5c>" } });
const text = fs.readFileSync(txt, "utf8");
const ids = tok.encode(text, { add_special_tokens: false });
fs.writeFileSync(out, ids.join(" ") + "\n");
"""


def _first_diff(a, b):
    for k in range(min(len(a), len(b))):
        if a[k] != b[k]:
            return k
    return min(len(a), len(b))


def verify(tok_path, text_paths, dsv4_tokenize=None, node_modules=None, log=print):
    """Encodes each file with this module, dsv4-tokenize and node (@lenml/tokenizers, the JS port of
    HF tokenizers); returns True when all ids agree and decode(encode(x)) == x."""
    import subprocess
    import tempfile

    tok = Tokenizer.load(tok_path)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, "encode.js")
        with open(js, "w", encoding="utf-8") as f:
            f.write(_JS_ENCODE)
        for path in text_paths:
            text = _read_text(path)
            ids = tok.encode(text)
            nb = len(text.encode("utf-8"))
            rt = tok.decode(ids) == text
            ok &= rt
            log("%s: %d bytes, %d ids, %.3f bytes/token; python decode(encode(x)) == x: %s"
                % (path, nb, len(ids), nb / max(1, len(ids)), rt))  # fmt: skip
            others = []
            if dsv4_tokenize:
                with open(path, "rb") as f:
                    r = subprocess.run([dsv4_tokenize, "--tokenizer", tok_path], stdin=f,
                                       stdout=subprocess.PIPE, check=True)  # fmt: skip
                others.append(("dsv4", [int(x) for x in r.stdout.split()]))
                r = subprocess.run([dsv4_tokenize, "--tokenizer", tok_path, "--decode"],
                                   input=r.stdout, stdout=subprocess.PIPE, check=True)  # fmt: skip
                same = r.stdout == text.encode("utf-8")
                ok &= same
                log("  dsv4 decode == text: %s" % same)
            if node_modules:
                out = os.path.join(tmp, "js-ids.txt")
                env = dict(os.environ, NODE_PATH=os.path.abspath(node_modules))
                cmd = ["node", js, os.path.abspath(tok_path), os.path.abspath(path), out]
                subprocess.run(cmd, env=env, check=True)
                others.append(("js", [int(x) for x in _read_text(out).split()]))
            for name, other in others:
                same = other == ids
                ok &= same
                if same:
                    log("  %s ids == python ids (%d)" % (name, len(ids)))
                else:
                    k = _first_diff(ids, other)
                    log("  %s ids DIFFER at id %d: python %s vs %s %s"
                        % (name, k, ids[k : k + 8], name, other[k : k + 8]))  # fmt: skip
    return ok


# ---------------------------------------------------------------------------------------------
# Command line


def _read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Byte-level BPE tokenizer (train / encode / decode).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="learn merges, write tokenizer.json")
    t.add_argument("--text", required=True)
    t.add_argument("--vocab", type=int, default=6144)
    t.add_argument("--out", required=True)
    t.add_argument("--max-bytes", type=int, default=0, help="use the first N bytes (0 = all)")
    e = sub.add_parser("encode", help="text file -> .npy of ids (uint16; no BOS)")
    e.add_argument("--tokenizer", required=True)
    e.add_argument("--text", required=True)
    e.add_argument("--out", required=True, help="F.npy, or F.txt for space-separated ids")
    e.add_argument("--max-bytes", type=int, default=0, help="use the first N bytes (0 = all)")
    d = sub.add_parser("decode", help=".npy or text of ids -> text on stdout")
    d.add_argument("--tokenizer", required=True)
    d.add_argument("--ids", required=True)
    v = sub.add_parser("verify", help="compare ids with dsv4-tokenize and the JS reference")
    v.add_argument("--tokenizer", required=True)
    v.add_argument("--text", required=True, nargs="+")
    v.add_argument("--dsv4-tokenize", help="path of the dsv4-tokenize program")
    v.add_argument("--node-modules", help="node_modules with @lenml/tokenizers (tests/js)")
    args = ap.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)

    if args.cmd == "train":
        text = _read_text(args.text)
        if args.max_bytes > 0:
            text = text.encode("utf-8")[: args.max_bytes].decode("utf-8", errors="ignore")
        t0 = time.time()
        tok = train(text, args.vocab, log)
        tok.save(args.out)
        print(
            "bpe.py: trained on %d bytes: vocab %d (%d merges) in %.1f s -> %s"
            % (len(text.encode("utf-8")), tok.vocab_size, len(tok.merges), time.time() - t0,
               args.out)  # fmt: skip
        )
    elif args.cmd == "encode":
        tok = Tokenizer.load(args.tokenizer)
        text = _read_text(args.text)
        if args.max_bytes > 0:
            text = text.encode("utf-8")[: args.max_bytes].decode("utf-8", errors="ignore")
        t0 = time.time()
        ids = tok.encode(text)
        if args.out.endswith(".npy"):
            save_ids_npy(args.out, ids, tok.vocab_size)
        else:
            with open(args.out, "w") as f:
                f.write(" ".join(map(str, ids)) + "\n")
        nb = len(text.encode("utf-8"))
        print(
            "bpe.py: %s: %d bytes -> %d ids (%.3f bytes/token) in %.1f s -> %s"
            % (args.text, nb, len(ids), nb / max(1, len(ids)), time.time() - t0, args.out)
        )
    elif args.cmd == "verify":
        ok = verify(args.tokenizer, args.text, args.dsv4_tokenize, args.node_modules)
        print("bpe.py verify: %s" % ("all agree" if ok else "MISMATCH"))
        return 0 if ok else 1
    else:
        tok = Tokenizer.load(args.tokenizer)
        if args.ids.endswith(".npy"):
            ids = load_ids_npy(args.ids)
        else:
            ids = [int(x) for x in _read_text(args.ids).split()]
        sys.stdout.write(tok.decode(ids))


if __name__ == "__main__":
    sys.exit(main())
