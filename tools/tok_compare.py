#!/usr/bin/env python3
"""Compares clens tokenizer outputs with the reference's (tools/tok_ref.js).

usage:
  tok_compare.py encode NAME CORPUS REF OUT [--json] [--dec CLENS_DEC]
      CORPUS: the input JSONL ({"text"} or {"hex"} lines); REF / OUT: the
      reference's and clens's outputs ({"ids"} lines; with --json also
      "tokens", "offsets" and, in REF, "dec"). Offsets: the reference reports
      characters, clens bytes; they are converted with the text (invalid UTF-8
      replaced by the WHATWG rule first). CLENS_DEC: `clens detokenize --jsonl
      REF` output, compared with REF's "dec".
  tok_compare.py decode NAME REF OUT
      {"text"} lines of both decoders.
  tok_compare.py errors NAME CORPUS OUT
      strict mode on invalid UTF-8: every OUT line must be {"error": ...}
      naming the byte offset given as "bad" in CORPUS.
Prints one summary line (and the first mismatches); exit status 1 on any
mismatch.
"""
import json
import sys

SEP = "<|endoftext|>"


def lossy(b):
    """WHATWG UTF-8 decode with replacement (maximal subparts)."""
    out = []
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            out.append(chr(c)); i += 1; continue
        if 0xC2 <= c <= 0xDF: need, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF: need, lo, hi = 2, (0xA0 if c == 0xE0 else 0x80), (0x9F if c == 0xED else 0xBF)
        elif 0xF0 <= c <= 0xF4: need, lo, hi = 3, (0x90 if c == 0xF0 else 0x80), (0x8F if c == 0xF4 else 0xBF)
        else:
            out.append("\ufffd"); i += 1; continue
        j = i + 1
        ok = True
        for k in range(need):
            if j >= n or not (lo <= b[j] <= hi):
                ok = False; break
            lo, hi = 0x80, 0xBF
            j += 1
        if ok:
            out.append(b[i:j].decode("utf-8")); i = j
        else:
            out.append("\ufffd"); i = j
    return "".join(out)


def text_of(rec):
    if "text" in rec:
        return rec["text"]
    return lossy(bytes.fromhex(rec["hex"]))


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def byte_to_char_map(s):
    """byte offset -> char offset (defined at character boundaries and at the end)."""
    m = {}
    b = 0
    for i, ch in enumerate(s):
        m[b] = i
        b += len(ch.encode("utf-8"))
    m[b] = len(s)
    return m


def describe_diff(text, a, b):
    k = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
    segs = text.split(SEP)
    where = ""
    if len(segs) > 1:
        # locate the segment by counting separator tokens is tokenizer-specific; show a window instead
        where = ""
    return "first difference at token %d: ref %s clens %s%s" % (k, a[k:k + 6], b[k:k + 6], where)


def cmd_encode(args):
    name, corpus, ref, out = args[:4]
    json_mode = "--json" in args
    trimmed = "--trimmed" in args
    dec_path = args[args.index("--dec") + 1] if "--dec" in args else None
    src = [json.loads(l) for l in read_lines(corpus)]
    rl, ol = read_lines(ref), read_lines(out)
    dl = read_lines(dec_path) if dec_path else None
    bad = {"ids": 0, "tokens": 0, "offsets": 0, "decode": 0, "lines": 0}
    shown = 0
    ntok = 0
    if len(rl) != len(src) or len(ol) != len(src) or (dl is not None and len(dl) != len(src)):
        print("%s: line counts differ: corpus %d, reference %d, clens %d%s" %
              (name, len(src), len(rl), len(ol), "" if dl is None else ", clens decode %d" % len(dl)))
        return 1
    for i in range(len(src)):
        if not json_mode and rl[i] == ol[i]:
            ntok += rl[i].count(",") + 1
            continue
        r, o = json.loads(rl[i]), json.loads(ol[i])
        if "error" in o:
            bad["lines"] += 1
            if shown < 5:
                print("  %s line %d: clens error: %s" % (name, i + 1, o["error"])); shown += 1
            continue
        ntok += len(r["ids"])
        if r["ids"] != o["ids"]:
            bad["ids"] += 1
            if shown < 5:
                t = text_of(src[i])
                print("  %s line %d (%r...): %s" % (name, i + 1, t[:80], describe_diff(t, r["ids"], o["ids"])))
                shown += 1
            continue
        if not json_mode:
            continue
        if r["tokens"] != o["tokens"]:
            bad["tokens"] += 1
            if shown < 5:
                print("  %s line %d: tokens differ: %s / %s" % (name, i + 1, r["tokens"][:8], o["tokens"][:8])); shown += 1
        t = text_of(src[i])
        m = byte_to_char_map(t)
        oc = [[m.get(s), m.get(e)] for s, e in o["offsets"]]
        if trimmed:
            keep = [j for j, tk in enumerate(r["tokens"]) if not (tk.startswith("\u0120") or tk.endswith("\u0120"))]
            oc = [oc[j] for j in keep]
            r["offsets"] = [r["offsets"][j] for j in keep]
            r["tokens"] = [r["tokens"][j] for j in keep]
            o["offsets"] = [o["offsets"][j] for j in keep]
        if oc != r["offsets"]:
            bad["offsets"] += 1
            if shown < 5:
                k = next((j for j in range(min(len(oc), len(r["offsets"]))) if oc[j] != r["offsets"][j]), 0)
                print("  %s line %d: offsets differ at token %d (%r): ref %s clens %s (bytes %s) text %r" %
                      (name, i + 1, k, r["tokens"][k], r["offsets"][k:k + 3], oc[k:k + 3],
                       o["offsets"][k:k + 3], t[:60]))
                shown += 1
        if dl is not None and json.loads(dl[i]).get("text") != r["dec"]:
            bad["decode"] += 1
            if shown < 5:
                print("  %s line %d: decode differs: ref %r clens %r" % (name, i + 1, r["dec"][:80], json.loads(dl[i]).get("text", "")[:80]))
                shown += 1
    n = len(src)
    parts = ["ids %d/%d" % (n - bad["ids"] - bad["lines"], n)]
    if json_mode:
        parts += ["tokens %d/%d" % (n - bad["tokens"] - bad["ids"] - bad["lines"], n),
                  "offsets %d/%d" % (n - bad["offsets"] - bad["ids"] - bad["lines"], n)]
        if dl is not None:
            parts.append("decode %d/%d" % (n - bad["decode"] - bad["ids"] - bad["lines"], n))
    print("%s: %d texts, %d tokens: %s identical" % (name, n, ntok, ", ".join(parts)))
    return 1 if any(bad.values()) else 0


def cmd_decode(args):
    name, ref, out = args[:3]
    rl, ol = read_lines(ref), read_lines(out)
    if len(rl) != len(ol):
        print("%s: line counts differ: reference %d, clens %d" % (name, len(rl), len(ol)))
        return 1
    bad = 0
    for i, (a, b) in enumerate(zip(rl, ol)):
        if a == b:
            continue
        ra, ob = json.loads(a), json.loads(b)
        if ra.get("text") != ob.get("text"):
            bad += 1
            if bad <= 5:
                print("  %s line %d: ref %r clens %r" % (name, i + 1, ra.get("text"), ob))
    print("%s: %d id sequences: decode %d/%d identical" % (name, len(rl), len(rl) - bad, len(rl)))
    return 1 if bad else 0


def cmd_errors(args):
    name, corpus, out = args[:3]
    src = [json.loads(l) for l in read_lines(corpus)]
    ol = read_lines(out)
    bad = 0
    for i, (s, l) in enumerate(zip(src, ol)):
        o = json.loads(l)
        want = "invalid UTF-8 at byte offset %d " % s["bad"]
        if "error" not in o or want not in o["error"]:
            bad += 1
            if bad <= 5:
                print("  %s line %d: expected an error naming byte offset %d, got %s" % (name, i + 1, s["bad"], l[:160]))
    if len(ol) != len(src):
        bad += 1
        print("  %s: %d lines out, %d in" % (name, len(ol), len(src)))
    print("%s: %d invalid texts: %d/%d errors name the right byte offset" % (name, len(src), len(src) - bad, len(src)))
    return 1 if bad else 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("encode", "decode", "errors"):
        sys.exit(__doc__)
    f = {"encode": cmd_encode, "decode": cmd_decode, "errors": cmd_errors}[sys.argv[1]]
    sys.exit(f(sys.argv[2:]))


if __name__ == "__main__":
    main()
