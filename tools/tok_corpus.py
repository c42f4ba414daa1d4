#!/usr/bin/env python3
"""Writes the generated corpora of the tokenizer parity suite into OUT_DIR:

  data.jsonl        every text of ../shared/data: MATH algebra problem and
                    solution, GSM8K question and answer, train and test
  exh_alone.jsonl   every Unicode scalar value (U+0000..U+10FFFF without
                    surrogates) alone: code points separated by the added token
                    <|endoftext|>, which isolates them before normalization and
                    pre-tokenization (architectures.md section 4.5)
  exh_ctx.jsonl     code points in 12 short contexts: every assigned one except
                    Lo letters without decomposition (every 16th) and unassigned
                    or private-use ones (every 256th; those assigned by Unicode
                    16.0, the reference's regex tables, all) (after an apostrophe,
                    between letters, digits, spaces, newlines, before a
                    combining mark, repeated, ...), contexts again separated by
                    <|endoftext|>
  decode_rand.jsonl 3000 random id sequences (ids up to 152000, so some have no
                    token; specials; byte tokens that end inside a character),
                    half with skip_special

usage: tools/tok_corpus.py SHARED_DIR OUT_DIR [--data-only]
"""
import json
import os
import random
import sys
import unicodedata as ud

SEP = "<|endoftext|>"
PER_LINE = 256


def write_jsonl(path, recs):
    with open(path, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def data_texts(shared):
    out = []
    for sub, keys in (("math_algebra", ("problem", "solution")), ("gsm8k", ("question", "answer"))):
        for split in ("train", "test"):
            with open(os.path.join(shared, "data", sub, split + ".jsonl"), encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        o = json.loads(line)
                        for k in keys:
                            out.append({"text": o[k]})
    return out


def scalars():
    return [c for c in range(0x110000) if not (0xD800 <= c <= 0xDFFF)]


def exh_alone():
    cps = scalars()
    out = []
    for i in range(0, len(cps), PER_LINE):
        out.append({"text": SEP.join(chr(c) for c in cps[i:i + PER_LINE])})
    return out


CONTEXTS = ["'{c}", "'{c}{c}", " {c}x", "a{c}a", "1{c}1", "{c}{c}{c}", "\n{c} \n", "{c}\u0301", "e{c}",
            "  {c}  ", ".{c}.", "{c}'s"]


def newer_code_points():
    """Code points assigned between Unicode 14.0 and 16.0 (the reference's regex
    tables): the class patches in src/tokenizer/tok_unicode_tables.c."""
    import re
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "tokenizer", "tok_unicode_tables.c")
    got = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'\s*\{"(\w+)", "(.*)"\},', line)
            if not m:
                continue
            for a, b in re.findall(r"x\{([0-9A-F]+)\}(?:-\\\\x\{([0-9A-F]+)\})?", m.group(2)):
                lo = int(a, 16)
                got.update(range(lo, int(b or a, 16) + 1))
    return got


def exh_ctx():
    """Code points in contexts. All of them except in the large homogeneous
    sets, which are sampled: letters of category Lo without a decomposition
    (CJK, Tangut, Hangul syllables, ...: every 16th) and unassigned or private-use
    code points (every 256th). Every code point is also tested alone."""
    sel = []
    k_lo = k_cn = 0
    newer = newer_code_points()
    for c in scalars():
        ch = chr(c)
        cat = ud.category(ch)
        if c in newer:
            k_lo += 1
            if k_lo % 16 and c >= 0x20000:   # CJK extensions H, I: sampled
                continue
        elif cat in ("Cn", "Co"):
            k_cn += 1
            if k_cn % 256:
                continue
        elif cat == "Lo" and not ud.decomposition(ch):
            k_lo += 1
            if k_lo % 16:
                continue
        sel.append(c)
    out = []
    per = PER_LINE // len(CONTEXTS)
    for i in range(0, len(sel), per):
        segs = []
        for c in sel[i:i + per]:
            ch = chr(c)
            segs += [t.replace("{c}", ch) for t in CONTEXTS]
        out.append({"text": SEP.join(segs)})
    return out


def decode_rand():
    rng = random.Random(12345)
    out = []
    for i in range(3000):
        n = rng.randint(1, 24)
        ids = []
        for _ in range(n):
            r = rng.random()
            if r < 0.55:
                ids.append(rng.randrange(0, 1000))        # short tokens, single bytes
            elif r < 0.85:
                ids.append(rng.randrange(0, 152000))
            else:
                ids.append(rng.choice([100256, 100257, 100264, 100265, 100277, 151643, 151644, 151645,
                                       151646, 151657, 151665, 151667, 151668, 151935]))
        out.append({"ids": ids, "skip_special": i % 2 == 1})
    return out


def main():
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] != "--data-only"):
        sys.exit("usage: tools/tok_corpus.py SHARED_DIR OUT_DIR [--data-only]")
    shared, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    write_jsonl(os.path.join(out, "data.jsonl"), data_texts(shared))
    if len(sys.argv) == 4:
        return
    write_jsonl(os.path.join(out, "exh_alone.jsonl"), exh_alone())
    write_jsonl(os.path.join(out, "exh_ctx.jsonl"), exh_ctx())
    write_jsonl(os.path.join(out, "decode_rand.jsonl"), decode_rand())


if __name__ == "__main__":
    main()
