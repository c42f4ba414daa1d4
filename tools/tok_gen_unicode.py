#!/usr/bin/env python3
"""Generates src/tokenizer/tok_unicode_tables.c: the normalization data used by
clens's NFC/NFD/NFKC/NFKD normalizers.

Why not utf8proc: the reference (Hugging Face `tokenizers` 0.22, crate
`unicode-normalization-alignments` 0.1.12) normalizes with Unicode 9.0.0 data,
while utf8proc 2.8 has Unicode 15. Characters assigned after 9.0 (e.g. the Dives
Akuru vowel sign O U+11938 = U+11935 U+11930, new combining marks) normalize
differently. The Unicode stability policy freezes combining classes,
decompositions and composition exclusions of assigned characters, so the 9.0
tables equal today's tables restricted to characters whose Age is <= 9.0.
Data sources: Python's unicodedata (decompositions, combining classes) and
Perl's Unicode::UCD (Age). Hangul is algorithmic (handled in C).

It also writes the regex class patches: the reference's regexes run on
Oniguruma with Unicode 16.0.0 property tables, PCRE2 10.42 has Unicode 14.0.0.
For every general category whose Unicode-16 set contains its Unicode-14 set,
the code points added since 14.0 are emitted as PCRE2 class items appended to
\p{X} (tok_regex.c); \d and \w get Oniguruma's Unicode-16 Digit and Word sets.
Source of the Unicode 16.0.0 sets: Oniguruma src/unicode_property_data.c at
commit 94877ac5901c30cc7022f4f464da393b04cd3375 (the oniguruma submodule of
rust-onig onig_sys 69.9, which HF tokenizers links), given with --onig.

Usage: tools/tok_gen_unicode.py --onig unicode_property_data.c > src/tokenizer/tok_unicode_tables.c
"""
import re
import subprocess
import sys
import unicodedata as ud

MAXV = (9, 0)

def ages():
    out = subprocess.run(
        ["perl", "-MUnicode::UCD=prop_invmap", "-e",
         'my ($l,$m)=prop_invmap("Age"); print "$l->[$_] $m->[$_]\\n" for 0..$#$l'],
        check=True, capture_output=True, text=True).stdout.split("\n")
    starts, vals = [], []
    for line in out:
        if not line.strip():
            continue
        s, v = line.split()
        starts.append(int(s))
        vals.append(None if v in ("NA", "Unassigned") else tuple(int(x) for x in v.split(".")))
    return starts, vals

def onig_ranges(src, name):
    m = re.search(r"\nCR_%s\[\] = \{ (\d+),\n(.*?)\};" % re.escape(name), src, re.S)
    if not m:
        d = re.search(r"#define CR_%s CR_(\w+)" % re.escape(name), src)
        if d:
            return onig_ranges(src, d.group(1))
        raise SystemExit("tok_gen_unicode: CR_%s not found" % name)
    n = int(m.group(1))
    nums = [int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]+)", m.group(2))]
    assert len(nums) == 2 * n, name
    return [(nums[2 * i], nums[2 * i + 1]) for i in range(n)]


def pcre_items(rs):
    out = []
    for a, b in rs:
        out.append("\\\\x{%X}" % a if a == b else "\\\\x{%X}-\\\\x{%X}" % (a, b))
    return "".join(out)


def regex_patches(onig_file, w):
    src = open(onig_file, encoding="utf-8").read()
    assert "#define UNICODE_PROPERTY_VERSION  160000" in src, "expected Oniguruma's Unicode 16.0.0 tables"
    w("/* Regex class patches: Unicode 16.0.0 (Oniguruma) minus Unicode %s (PCRE2). */\n" % ud.unidata_version)
    w("const tok_class_patch tok_class_patches[] = {\n")
    cats = ["L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc", "Pd",
            "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf", "Co"]
    n = 0
    for cat in cats:
        s16 = set()
        for a, b in onig_ranges(src, cat):
            s16.update(range(a, b + 1))
        s14 = set(c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and ud.category(chr(c)).startswith(cat))
        if s14 - s16:
            w("    /* %s: not patched, %d code points left it since %s */\n" % (cat, len(s14 - s16), ud.unidata_version))
            continue
        plus = sorted(s16 - s14)
        rs = []
        for c in plus:
            if rs and rs[-1][1] == c - 1:
                rs[-1][1] = c
            else:
                rs.append([c, c])
        w('    {"%s", "%s"},\n' % (cat, pcre_items(rs)))
        n += 1
    w("};\nconst int tok_n_class_patches = %d;\n\n" % n)
    w('const char tok_class_digit16[] = "%s";\n' % pcre_items(onig_ranges(src, "Digit")))
    w('const char tok_class_word16[] = "%s";\n' % pcre_items(onig_ranges(src, "Word")))


def main():
    onig = None
    if len(sys.argv) == 3 and sys.argv[1] == "--onig":
        onig = sys.argv[2]
    else:
        raise SystemExit("usage: tools/tok_gen_unicode.py --onig unicode_property_data.c > src/tokenizer/tok_unicode_tables.c")
    starts, vals = ages()
    assigned9 = bytearray(0x110000)
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < len(starts) else 0x110000
        v = vals[i]
        if v is not None and v <= MAXV:
            for c in range(s, e):
                assigned9[c] = 1
    assert assigned9[0x11935] == 0 and assigned9[0x41] == 1 and assigned9[0x1F600] == 1

    def ok(c):
        return assigned9[c] and not (0xAC00 <= c <= 0xD7A3)

    ccc = {}
    canon1 = {}   # one-level canonical mapping
    compat1 = {}  # one-level compatibility mapping (tag removed)
    for c in range(0x110000):
        if not ok(c) or 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        k = ud.combining(ch)
        if k:
            ccc[c] = k
        d = ud.decomposition(ch)
        if d:
            parts = d.split()
            if parts[0].startswith("<"):
                compat1[c] = [int(x, 16) for x in parts[1:]]
            else:
                canon1[c] = [int(x, 16) for x in parts]

    def hangul_dec(c):
        s = c - 0xAC00
        if 0 <= s < 11172:
            l, v, t = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
            return [l, v] + ([t] if t != 0x11A7 else [])
        return None

    def full(c, compat):
        h = hangul_dec(c)
        if h:
            return h
        m = canon1.get(c) or (compat1.get(c) if compat else None)
        if not m:
            return [c]
        r = []
        for x in m:
            r += full(x, compat)
        return r

    canon_full = {c: full(c, False) for c in canon1}
    compat_full = {c: full(c, True) for c in set(canon1) | set(compat1)}

    # Primary composites: canonical two-char mappings, first char a starter,
    # not fully excluded (NFC of the mapping gives the char back).
    comp = {}
    for c, m in canon1.items():
        if len(m) != 2 or ccc.get(m[0], 0) != 0:
            continue
        if ud.normalize("NFC", chr(m[0]) + chr(m[1])) != chr(c):
            continue
        comp[(m[0], m[1])] = c
    seconds = set(b for (_, b) in comp)

    def cc(c):
        return ccc.get(c, 0)

    def compose(a, b):
        if 0x1100 <= a < 0x1113 and 0x1161 <= b < 0x1176:
            return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28
        s = a - 0xAC00
        if 0 <= s < 11172 and s % 28 == 0 and 0x11A7 < b < 0x11C3:
            return a + (b - 0x11A7)
        return comp.get((a, b))

    def normalize(cps, compat, recompose):
        d = []
        for c in cps:
            d += compat_full.get(c, [c]) if compat else (canon_full.get(c) or hangul_dec(c) or [c])
        # canonical ordering (stable sort of runs of non-starters)
        i = 0
        while i < len(d):
            if cc(d[i]) == 0:
                i += 1
                continue
            j = i
            while j < len(d) and cc(d[j]) != 0:
                j += 1
            d[i:j] = sorted(d[i:j], key=cc)
            i = j
        if not recompose:
            return d
        out = []
        starter = None   # index of the last starter in out
        last = None      # ccc of the last char appended after that starter
        for c in d:
            k = cc(c)
            if starter is not None and (last is None or last < k):
                r = compose(out[starter], c)
                if r is not None:
                    out[starter] = r
                    continue
            if k == 0:
                starter, last = len(out), None
            else:
                last = k
            out.append(c)
        return out

    # "maybe" sets: characters for which the normalizer may change the text or
    # its alignment. A text with none of them is left untouched.
    def maybe_set(compat, recompose):
        s = []
        for c in range(0x110000):
            if 0xD800 <= c <= 0xDFFF:
                continue
            if c < 0x80:
                continue
            if cc(c) != 0:
                s.append(c); continue
            if recompose and (c in seconds or 0x1161 <= c <= 0x1175 or 0x11A8 <= c <= 0x11C2):
                s.append(c); continue
            dec = compat_full.get(c) if compat else (canon_full.get(c) or hangul_dec(c))
            if dec and normalize([c], compat, recompose) != [c]:
                s.append(c); continue
            if dec and recompose and (dec[0] in seconds or cc(dec[0]) != 0):
                s.append(c); continue
            # Decomposable chars that recompose to themselves keep tag 0: inert.
        return ranges(s)

    def ranges(cs):
        r = []
        for c in cs:
            if r and r[-1][1] == c - 1:
                r[-1][1] = c
            else:
                r.append([c, c])
        return r

    w = sys.stdout.write
    w("/*\n * tok_unicode_tables.c: GENERATED by tools/tok_gen_unicode.py, do not edit.\n"
      " * Unicode normalization data equal to Unicode 9.0.0 (the version of the\n"
      " * reference tokenizers' normalizer), derived from Python unicodedata %s\n"
      " * restricted to characters with Age <= 9.0 (Perl Unicode::UCD).\n */\n" % ud.unidata_version)
    w('#include "tokenizer/tok_unicode.h"\n\n')
    # ccc ranges
    cr = []
    for c in sorted(ccc):
        if cr and cr[-1][1] == c - 1 and cr[-1][2] == ccc[c]:
            cr[-1][1] = c
        else:
            cr.append([c, c, ccc[c]])
    w("const tok_ccc_range tok_ccc_ranges[] = {\n")
    for a, b, k in cr:
        w("    {0x%X, 0x%X, %d},\n" % (a, b, k))
    w("};\nconst int tok_n_ccc_ranges = %d;\n\n" % len(cr))

    def emit_dec(name, table):
        keys = sorted(table)
        data = []
        w("const tok_decomp %s[] = {\n" % name)
        for c in keys:
            w("    {0x%X, %d, %d},\n" % (c, len(data), len(table[c])))
            data += table[c]
        w("};\nconst int %s_n = %d;\n" % (name, len(keys)))
        w("const uint32_t %s_data[] = {\n" % name)
        for i in range(0, len(data), 10):
            w("    " + ", ".join("0x%X" % x for x in data[i:i + 10]) + ",\n")
        w("};\n\n")

    emit_dec("tok_canon_decomp", canon_full)
    emit_dec("tok_compat_decomp", compat_full)
    w("const tok_comp_pair tok_comp_pairs[] = {\n")
    for (a, b) in sorted(comp, key=lambda p: (p[0] << 21) | p[1]):
        w("    {0x%XULL, 0x%X},\n" % ((a << 21) | b, comp[(a, b)]))
    w("};\nconst int tok_n_comp_pairs = %d;\n\n" % len(comp))
    for name, compat, rec in (("nfc", False, True), ("nfd", False, False),
                              ("nfkc", True, True), ("nfkd", True, False)):
        r = maybe_set(compat, rec)
        w("const uint32_t tok_maybe_%s[][2] = {\n" % name)
        for a, b in r:
            w("    {0x%X, 0x%X},\n" % (a, b))
        w("};\nconst int tok_n_maybe_%s = %d;\n\n" % (name, len(r)))
    regex_patches(onig, w)

if __name__ == "__main__":
    main()
