#!/usr/bin/env python3
"""check_pairs.py PAIRS.jsonl DATA.jsonl math|gsm8k

Re-derives every pair of a `clens pairs` output from the dataset, independently
of the C code, and exits 1 on the first few violations:
  - keys: the R5 keys first, in R5 order, with the right types;
  - source_sha256 is the dataset's; id / problem / line match the dataset row;
  - clean_prefix is a prefix of the solution text (GSM8K: the answer with its
    <<..>> annotations removed) and holds clean_value at [start, end) (bytes);
  - corrupted_prefix == clean_prefix with only the site replaced (same text
    boundary), except for chars-raw:N where it is the corrupted text cut N
    characters after the start of the number;
  - corrupted_value follows the rule: last-digit (+1, 9 -> 8), plus-one
    (Python str(int(x) + 1) / str(float(x) + 1.0), separators dropped) or
    plus-minus-one (+-1 in the last place; plus-minus-sig: in the last nonzero
    digit; digit count kept, the direction the
    top bit of the second splitmix64 output, flipped only when the drawn one
    changes the digit count, or gives the final answer or a number written
    before it on its line);
  - the cut: chars:N / chars-raw:N exactly; line: no newline before the last
    character, no final answer (\\boxed / ####) inside, ends at a step end;
    and (docs/pairs.md, "the error is the last arithmetic") nothing after the
    site but prose and punctuation (no digit, relation, operator or
    arithmetic macro), no open math at the end ($, $$, \\[..\\], \\begin..\\end
    balanced), MATH: not at a newline after an unfinished sentence;
  - no two pairs share a clean prefix; no identity step (x*1, 1*x, x/1, x+0,
    0+x, x-0); GSM8K: the value is not written before "because" on its line;
  - GSM8K: the annotation expression evaluates (exact fractions) to the site;
  - site_rule seed: the site is the last match of the seed's regex =\s*\$?(\d+(\.\d+)?);
  - site_rule random: site_index = floor(splitmix64(seed ^ fnv1a64(id)) * n_sites / 2^64);
  - candidate_index = 0, 1, 2, ... and lines increase.
"""
import hashlib
import json
import re
import sys
from fractions import Fraction

R5 = ["id", "source", "source_sha256", "problem", "clean_prefix", "corrupted_prefix", "site",
      "cut", "corrupt", "seed"]
SITE = ["start", "end", "expr", "clean_value", "corrupted_value"]
M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


def splitmix64_first(state):
    z = (state + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def last_digit(v):
    i = max(k for k, c in enumerate(v) if c.isdigit())
    d = "8" if v[i] == "9" else str(int(v[i]) + 1)
    return v[:i] + d + v[i + 1:]


def plus_one(v):
    d = re.sub(r"[^0-9.]", "", v)
    return str(float(d) + 1) if "." in d else str(int(d) + 1)


def plus_minus(v, d, sig=False):
    """v +- 1 in its last place (sig: in its last nonzero digit), digits changed in
    place; None if the digit count changes."""
    ds = [i for i, c in enumerate(v) if c.isdigit()]
    digits = "".join(v[i] for i in ds)
    zeros = len(digits) - len(digits.rstrip("0")) if sig and digits.strip("0") else 0
    n = int(digits) + d * 10 ** zeros
    if n < 0:
        return None
    s = str(n).zfill(len(ds))
    if len(s) != len(ds):
        return None
    out = list(v)
    for i, c in zip(ds, s):
        out[i] = c
    r = "".join(out)
    ip = [c for c in v.split(".")[0] if c.isdigit()]
    if len(ip) > 1 and r[ds[0]] == "0":
        return None
    return r


def pm_direction(seed, id_):
    st = seed ^ fnv1a64(id_)
    st = (st + 0x9E3779B97F4A7C15) & M64  # the first output chose the site
    return -1 if splitmix64_first(st) >> 63 else 1


MATH_AFTER = re.compile(r"[0-9=<>+*^]|\\(frac|dfrac|tfrac|cfrac|cdot|times|div|sqrt|le|ge|leq|geq|lt|gt|ne|neq|"
                        r"approx|pm|Rightarrow|implies|begin)(?![a-zA-Z])|\\\[")
IDENTITY = re.compile(r"^\s*(\d+(\.\d+)?\s*[*/]\s*1|1\s*\*\s*\d+(\.\d+)?|\d+(\.\d+)?\s*[-+]\s*0|0\s*\+\s*\d+(\.\d+)?)\s*$")


def open_math(prefix):
    t = prefix.replace("\\$", "")
    dd = t.count("$$")
    single = t.replace("$$", "").count("$")
    return (dd % 2 or single % 2 or t.count("\\[") != t.count("\\]") or
            t.count("\\begin{") != t.count("\\end{"))


def frac_eval(expr):
    return eval(re.sub(r"(\d*\.?\d+)", lambda m: 'Fraction("%s")' % m.group(1), expr),
                {"Fraction": Fraction})


def main():
    pairs_path, data_path, fmt = sys.argv[1:4]
    raw = open(data_path, "rb").read()
    sha = hashlib.sha256(raw).hexdigest()
    rows = {}
    for i, line in enumerate(raw.decode().split("\n"), 1):
        if line.strip():
            rows[i] = json.loads(line)
    short = "/".join(data_path.rstrip("/").split("/")[-2:])
    errors = []

    def err(p, msg):
        errors.append("%s (%s): %s" % (pairs_path, p.get("id"), msg))

    n = 0
    prev_line = 0
    seen_prefix = {}
    for k, l in enumerate(open(pairs_path, encoding="utf-8")):
        p = json.loads(l)
        n += 1
        if list(p.keys())[:len(R5)] != R5:
            err(p, "keys %s" % list(p.keys()))
            continue
        if list(p["site"].keys()) != SITE:
            err(p, "site keys %s" % list(p["site"].keys()))
        if p["source_sha256"] != sha:
            err(p, "source_sha256")
        if p["candidate_index"] != k or p["line"] <= prev_line:
            err(p, "candidate_index / line order")
        prev_line = p["line"]
        row = rows[p["line"]]
        if fmt == "math":
            text, problem, want_id = row["solution"], row["problem"], row.get("id")
        else:
            text = re.sub(r"<<.*?>>", "", row["answer"], flags=re.S)
            problem, want_id = row["question"], row.get("id", "%s:%d" % (short, p["line"]))
        if p["id"] != want_id or p["problem"] != problem:
            err(p, "id / problem do not match line %d" % p["line"])
        tb = text.encode()
        cb, xb = p["clean_prefix"].encode(), p["corrupted_prefix"].encode()
        s, e = p["site"]["start"], p["site"]["end"]
        cv, xv = p["site"]["clean_value"], p["site"]["corrupted_value"]
        if tb[:len(cb)] != cb:
            err(p, "clean_prefix is not a prefix of the solution text")
        if cb[s:e].decode() != cv:
            err(p, "site [%d, %d) is %r, not %r" % (s, e, cb[s:e], cv))
        if p["corrupt"] in ("plus-minus-one", "plus-minus-sig"):
            d = pm_direction(p["seed"], p["id"])
            sig = p["corrupt"] == "plus-minus-sig"
            drawn, other = plus_minus(cv, d, sig), plus_minus(cv, -d, sig)
            # the other direction only when the drawn one is impossible, or is the
            # answer or a number written earlier on the site's line
            line = cb[:s].decode().split("\n")[-1]
            seen = re.sub(r"[^0-9.]", " ", p["answer"] + " " + line.replace(",", "")).split()
            seen = {float(a) for a in seen if a.strip(".") and a.count(".") <= 1}
            if xv == drawn:
                pass
            elif xv != other or (drawn is not None and float(re.sub(r"[^0-9.]", "", drawn)) not in seen):
                err(p, "corrupted_value %r, rule gives %r (direction %d)" % (xv, drawn, d))
        else:
            want_x = last_digit(cv) if p["corrupt"] == "last-digit" else plus_one(cv)
            if xv != want_x:
                err(p, "corrupted_value %r, rule gives %r" % (xv, want_x))
        if p["corrupt"] in ("last-digit", "plus-minus-one", "plus-minus-sig") and (len(xv) != len(cv) or
                                             sum(c.isdigit() for c in xv) != sum(c.isdigit() for c in cv)):
            err(p, "digit count changed")
        cs = len(tb[:s].decode())          # character index of the site
        ce = cs + len(cv)
        ctext = text[:cs] + xv + text[ce:]
        cut = p["cut"]
        if cut.startswith("chars:") or cut.startswith("chars-raw:"):
            N = int(cut.split(":")[1])
            want_c = text[:max(cs + N, ce)]
            if cut.startswith("chars:"):
                want_x_prefix = text[:cs] + xv + want_c[ce:]
            else:
                want_x_prefix = ctext[:max(cs + N, cs + len(xv))]
            if p["clean_prefix"] != want_c or p["corrupted_prefix"] != want_x_prefix:
                err(p, "%s cut differs" % cut)
        else:
            if xb != cb[:s] + xv.encode() + cb[e:]:
                err(p, "corrupted_prefix differs outside the site")
            rest = p["clean_prefix"][ce:]
            # a '.' that closes display math may sit on the line before the delimiter
            body = re.sub(r"\s*(\\\]|\$\$|\$|\\\)|\\end\{[a-z*]+\})$", "", rest)
            if "\n" in body[:-1]:
                err(p, "line cut runs past a newline")
            if p["site_rule"] != "seed" and ("\\boxed" in p["clean_prefix"] or "####" in p["clean_prefix"]):
                err(p, "the final answer is inside the prompt")
            if rest and rest[-1] not in ".?!,;:%$])}\n" and len(cb) != len(tb):
                err(p, "line cut ends at %r" % rest[-10:])
            if p["site_rule"] != "seed":
                if "\\begin" in rest or MATH_AFTER.search(re.sub(r"\\end\{[a-zA-Z*]+\}", " ", rest)):
                    err(p, "more math after the site: %r" % rest[:60])
                if fmt == "math" and open_math(p["clean_prefix"]):
                    err(p, "the prompt ends in open math: %r" % p["clean_prefix"][-40:])
                if fmt == "math" and rest.endswith("\n") and not re.search(
                        r"[.?!:]\s*(\$\$|\\\]|\$|\\\)|\\end\{[a-z*]+\})?\s*$", rest):
                    err(p, "the prompt ends at a newline inside a sentence: %r" % rest[-40:])
        if fmt == "gsm8k" and p["site_rule"] != "seed":
            v = Fraction(re.sub(r"[^0-9.]", "", cv))
            if abs(frac_eval(p["site"]["expr"])) != v:
                err(p, "expr %r is not %s" % (p["site"]["expr"], cv))
        if p["site_rule"] != "seed":
            if p["clean_prefix"] in seen_prefix:
                err(p, "same clean prefix as %s" % seen_prefix[p["clean_prefix"]])
            seen_prefix[p["clean_prefix"]] = p["id"]
            if IDENTITY.match(p["site"]["expr"]):
                err(p, "identity step %r" % p["site"]["expr"])
            if fmt == "gsm8k":
                line = cb[:s].decode().split("\n")[-1]
                if "because" in line and re.search(r"(?<![\d.])%s(?![\d.])" % re.escape(cv),
                                                   line.split("because")[0]):
                    err(p, "value written before 'because': %r" % line)
        if p["site_rule"] == "random":
            r = splitmix64_first(p["seed"] ^ fnv1a64(p["id"]))
            if p["site_index"] != (r * p["n_sites"]) >> 64:
                err(p, "site_index is not the seeded choice")
        elif p["site_rule"] == "seed":
            # the seed's regex, independently: the last "= n" (ASCII \s and \d)
            ms = list(re.finditer(r"=\s*\$?(\d+(?:\.\d+)?)", text, flags=re.ASCII))
            if not ms or ms[-1].start(1) != cs or ms[-1].group(1) != cv or p["n_sites"] != len(ms):
                err(p, "site_rule seed but not the last '= n' match")
        elif p["site_index"] != p["n_sites"] - 1:
            err(p, "site_rule last but not the last site")
    if __import__("os").environ.get("CHECK_ALL"): [print("check_pairs:", m) for m in errors]
    for m in errors[:10]:
        print("check_pairs:", m)
    print("check_pairs: %s: %d pairs, %d problems, %d violations" % (pairs_path.split("/")[-1], n,
                                                                     len(rows), len(errors)))
    return 1 if errors or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
