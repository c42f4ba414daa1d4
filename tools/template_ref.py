#!/usr/bin/env python3
"""Reference renderer for clens chat-template parity (tests/suites/31-template-parity.sh).

Renders every (template, conversation, add_generation_prompt) case of
tests/data/templates/manifest.json with Debian's python3-jinja2 in the
environment transformers' apply_chat_template uses (transformers 4.57,
src/transformers/utils/chat_template_utils.py, _compile_jinja_template):

  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                extensions=[AssistantTracker, loopcontrols])
  filters["tojson"]  = json.dumps(x, ensure_ascii=False, indent=None,
                                  separators=None, sort_keys=False)
  globals["raise_exception"] raises TemplateError(message)
  globals["strftime_now"](fmt) = now.strftime(fmt)   (here: a fixed UTC time)
  render(messages=..., tools=..., documents=..., add_generation_prompt=...,
         **special_tokens_map, **kwargs)

Templates are loaded the way transformers loads them, written here
independently of the C code: a folder's chat_template.jinja wins over the
"chat_template" of its tokenizer_config.json (a string, or a list of
{name, template} where "default" is used); special tokens are the set,
non-empty bos/eos/unk/sep/pad/cls/mask/additional_special_tokens of
tokenizer_config.json (strings or {"content": ...} objects).

One process renders all cases:
  template_ref.py render --root ROOT --shared SHARED --out DIR
      writes DIR/cases.tsv (one line per case), DIR/NNNN.ref (expected bytes)
      or DIR/NNNN.referr (expected error), DIR/templates.tsv (sha256 of each
      template source) and checks the manifest's "expect" strings.
  template_ref.py random --root ROOT --out DIR --seed S --n N
      like render, for N random templates (seeded, so reproducible) built
      from the constructs clens supports; written to DIR/rnd/NNNN.jinja.
  template_ref.py compare --out DIR
      compares DIR/NNNN.got / NNNN.rc / NNNN.stderr written by the suite with
      the reference and prints the case counts.
"""
import argparse
import glob
import hashlib
import json
import os
import sys
from datetime import datetime, timezone

import jinja2
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

SPECIAL = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
           "additional_special_tokens"]


class AssistantTracker(Extension):
    """transformers' {% generation %} tag: a CallBlock whose body renders in place."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


class RaisedByTemplate(jinja2.exceptions.TemplateError):
    pass


def make_env(now):
    def raise_exception(message):
        raise RaisedByTemplate(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.fromtimestamp(now, timezone.utc).replace(tzinfo=None).strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def token_str(v):
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


def load_template(path):
    """Returns (source text, origin, special tokens dict) as transformers would load them."""
    cfg_path = None
    src = None
    origin = None
    if os.path.isdir(path):
        j = os.path.join(path, "chat_template.jinja")
        if os.path.exists(j):
            src, origin = open(j, "rb").read().decode("utf-8"), j
        c = os.path.join(path, "tokenizer_config.json")
        cfg_path = c if os.path.exists(c) else None
    elif path.endswith(".json"):
        cfg_path = path
    else:
        src, origin = open(path, "rb").read().decode("utf-8"), path
        c = os.path.join(os.path.dirname(path), "tokenizer_config.json")
        cfg_path = c if os.path.exists(c) else None
    cfg = json.load(open(cfg_path, encoding="utf-8")) if cfg_path else {}
    if src is None:
        ct = cfg.get("chat_template")
        if isinstance(ct, list):
            ct = {t["name"]: t["template"] for t in ct}["default"]
        src, origin = ct, cfg_path + "#chat_template"
    special = {}
    for k in SPECIAL:
        v = cfg.get(k)
        if isinstance(v, list):
            v = [s for s in (token_str(x) for x in v) if s is not None]
        else:
            v = token_str(v)
        if v:  # transformers' special_tokens_map keeps only truthy values
            special[k] = v
    return src, origin, special


_compiled = {}


def compile_template(env, src):
    """Compiles once per source; returns (template, None) or (None, error message)."""
    if src not in _compiled:
        try:
            _compiled[src] = (env.from_string(src), None)
        except Exception as e:  # syntax errors, unknown filters / tests
            _compiled[src] = (None, f"{type(e).__name__}: {e}")
    return _compiled[src]


def render(env, src, special, conv, agp):
    """Renders like apply_chat_template(tokenize=False); returns ("ok", text) or (kind, message)."""
    tmpl, err = compile_template(env, src)
    if err:
        return "error", err
    if isinstance(conv, list):
        messages, tools, documents, extra = conv, None, None, {}
    else:
        extra = {k: v for k, v in conv.items() if k not in ("messages", "tools", "documents", "add_generation_prompt")}
        messages, tools, documents = conv["messages"], conv.get("tools"), conv.get("documents")
        if agp is None:
            agp = bool(conv.get("add_generation_prompt", False))
    kwargs = dict(special)
    kwargs.update(extra)
    try:
        return "ok", tmpl.render(messages=messages, tools=tools, documents=documents,
                                 add_generation_prompt=bool(agp), **kwargs)
    except RaisedByTemplate as e:
        return "raise", str(e)
    except Exception as e:
        return "error", f"{type(e).__name__}: {e}"


def expand(root, shared, refdir, p):
    p = p.replace("${SHARED}", shared).replace("${REF_TEMPLATES}", refdir)
    return p if os.path.isabs(p) else os.path.join(root, p)


def cmd_render(a):
    root = os.path.abspath(a.root)
    man = json.load(open(os.path.join(root, "tests/data/templates/manifest.json"), encoding="utf-8"))
    now = man["now"]
    env = make_env(now)
    refdir = os.path.join(root, "tools/ref-templates")
    convdir = os.path.join(root, "tests/data/templates/conversations")
    sets = man["conversation_sets"]
    os.makedirs(a.out, exist_ok=True)
    templates = []
    for t in man["templates"]:
        if "glob" in t:
            for p in sorted(glob.glob(expand(root, a.shared, refdir, t["glob"]))):
                templates.append((t["group"] + "/" + os.path.splitext(os.path.basename(p))[0], p, t))
        else:
            p = expand(root, a.shared, refdir, t["path"])
            if not os.path.exists(p):
                if t.get("optional"):
                    print(f"template_ref: skipping {t['name']}: {p} is missing ({t.get('why_optional', '')})")
                    continue
                sys.exit(f"template_ref: {p}: missing")
            templates.append((t["name"], p, t))
    n = 0
    counts = {}
    with open(os.path.join(a.out, "cases.tsv"), "w", encoding="utf-8") as cases, \
         open(os.path.join(a.out, "templates.tsv"), "w", encoding="utf-8") as tt:
        for name, path, t in templates:
            src, origin, special = load_template(path)
            tt.write(f"{name}\t{path}\t{hashlib.sha256(src.encode('utf-8')).hexdigest()}\n")
            convs = sets[t["conversations"]] if isinstance(t["conversations"], str) else t["conversations"]
            for cname in convs:
                cpath = os.path.join(convdir, cname + ".json")
                conv = json.load(open(cpath, encoding="utf-8"))
                for agp in (0, 1):
                    kind, text = render(env, src, special, conv, agp)
                    cid = f"{n:04d}"
                    with open(os.path.join(a.out, cid + (".ref" if kind == "ok" else ".referr")), "wb") as f:
                        f.write(text.encode("utf-8") if kind == "ok" else f"{kind}\t{text}".encode("utf-8"))
                    cases.write(f"{cid}\t{name}\t{path}\t{cpath}\t{agp}\t{kind}\n")
                    counts.setdefault(name, [0, 0])
                    counts[name][0 if kind == "ok" else 1] += 1
                    n += 1
    # architectures.md 4.7 strings: the reconstructions must render exactly these
    bad = 0
    for e in man.get("expect", []):
        p = expand(root, a.shared, refdir, e["path"])
        src, _, special = load_template(p)
        kind, text = render(env, src, special, e["conversation"], e["add_generation_prompt"])
        if kind != "ok" or text != e["text"]:
            print(f"template_ref: EXPECT FAILED {e['path']}: jinja2 gave {kind} {text!r}, expected {e['text']!r}")
            bad += 1
    print(f"template_ref: jinja2 {jinja2.__version__}: {n} cases from {len(templates)} templates "
          f"({sum(c[0] for c in counts.values())} render, {sum(c[1] for c in counts.values())} raise or fail); "
          f"{len(man.get('expect', []))} architectures.md 4.7 strings checked, {bad} failed")
    return 1 if bad else 0


# ------------------------------------------------------------ random templates

RANDOM_CONV = {"messages": [
    {"role": "system", "content": "S é"},
    {"role": "user", "content": "Hi <b> 'q' \"d\""},
    {"role": "assistant", "content": "<think>t</think>\n\nA",
     "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1, "y": [1.5, None]}}}]}],
    "d": {"a": 1, "b": [1, 2], "c": {"x": "y"}, "e": None, "f": 2.5, "g": True},
    "l": [3, 1, 2, "x"], "s": "Héllo, World  ", "n": None, "i": 7, "f": -2.5, "t": True, "e": ""}


def random_template(R):
    """A random template over the constructs clens implements. Avoids the two
    places where jinja2's output is not reproducible or where its compile-time
    constant folding differs from run time: printing bound methods (addresses)
    and slicing arbitrary expressions (only names are sliced)."""
    atoms = ["1", "0", "-3", "2.5", "0.1", "1e20", "'a'", "'é\\n'", '"x y"', "''", "none", "true", "false",
             "[1, 2]", "[]", "{'k': 1}", "{}", "(1, 'a')", "messages", "messages[0]", "messages[-1].content",
             "messages[1]['role']", "d", "d.a", "d['b']", "d.c.x", "d.zz", "l", "s", "n", "i", "f", "t", "e",
             "undef", "loop", "range(3)", "ns.v", "s[1:4]", "l[::-1]", "messages[1:]", "s[-3:]"]
    filters = ["length", "first", "last", "upper", "lower", "title", "capitalize", "trim", "string", "list",
               "tojson", "sort", "unique|list", "reverse|list", "join(',')", "default('D')", "int", "float", "abs",
               "round", "count", "items|list", "dictsort", "sum", "min", "max", "map('string')|list",
               "select|list", "reject|list", "selectattr('role')|list", "map(attribute='role')|list",
               "replace('l', 'L')", "indent(2)", "wordcount", "center(9)", "e", "safe", "batch(2)|list",
               "tojson(indent=1)", "truncate(5)", "d", "list|length", "string|length"]
    tests = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "sequence",
             "iterable", "true", "false", "boolean", "odd", "even", "lower", "upper", "eq 1", "in [1, 'a']",
             "callable", "divisibleby 2", "sameas none"]
    methods = [".strip()", ".split()", ".split(',')", ".upper()", ".lower()", ".startswith('H')", ".endswith(' ')",
               ".replace('o', '0')", ".find('l')", ".count('l')", ".title()", ".lstrip()", ".rstrip()", ".get('a')",
               ".get('zz', 3)", ".items()|list", ".keys()|list", ".values()|list", ".index(1)", "[0]", "[-1]",
               "['a']", ".a"]
    binops = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">", "<=", ">=", "in", "not in", "and", "or"]
    ws = ["", " ", "\n", "  \n  ", "\t"]

    nums = ["1", "0", "-3", "2.5", "0.1", "d.a", "i", "f", "messages|length", "l|length", "s|length", "d.f",
            "ns.v|int"]
    strs = ["'a'", "'é\\n'", '"x y"', "''", "s", "messages[0].content", "messages[-1].content", "d.c.x",
            "messages[1]['role']", "s[1:4]", "s[-3:]"]
    lists = ["l", "[1, 2]", "[]", "messages", "d['b']", "range(3)|list", "s.split()", "l[::-1]", "messages[1:]",
             "(1, 'a')"]
    numops = ["+", "-", "*", "//", "%", "==", "!=", "<", ">", "<=", ">="]
    strops = ["~", "+", "==", "!=", "<", "in", "not in"]

    def typed(kind, d):
        r = R.random()
        if kind == "num":
            if d > 2 or r < 0.4:
                return R.choice(nums)
            if r < 0.7:
                return "(" + typed("num", d + 1) + " " + R.choice(numops) + " " + typed("num", d + 1) + ")"
            if r < 0.85:
                return "(" + typed(R.choice(["str", "list"]), d + 1) + ")|" + R.choice(["length", "count"])
            return "(" + typed("str", d + 1) + ").find('l')"
        if kind == "str":
            if d > 2 or r < 0.4:
                return R.choice(strs)
            if r < 0.6:
                return "(" + typed("str", d + 1) + " " + R.choice(["~", "+"]) + " " + typed("str", d + 1) + ")"
            if r < 0.75:
                return "(" + typed("str", d + 1) + ")" + R.choice([".strip()", ".upper()", ".lower()", ".title()",
                                                                   ".replace('o', '0')", ".lstrip()", "|trim",
                                                                   "|capitalize", "|e", "|safe", "|indent(2)"])
            if r < 0.85:
                return "(" + typed("list", d + 1) + ")|join(" + R.choice(["", "','", "' - '"]) + ")"
            return "(" + expr(d + 1) + ")|" + R.choice(["string", "tojson", "tojson(indent=1)"])
        if d > 2 or r < 0.5:
            return R.choice(lists)
        if r < 0.7:
            return "(" + typed("list", d + 1) + ")|" + R.choice(["sort|list", "unique|list", "reverse|list",
                                                              "batch(2)|list", "select|list", "map('string')|list"])
        if r < 0.85:
            return "messages|" + R.choice(["selectattr('role', 'equalto', 'user')|list", "map(attribute='role')|list",
                                           "rejectattr('tool_calls')|list", "map(attribute='content')|list"])
        return "(" + typed("str", d + 1) + ").split(" + R.choice(["", "','", "' '"]) + ")"

    def expr(d=0):
        r = R.random()
        if d > 3 or r < 0.2:
            return R.choice(atoms)
        if r < 0.5:
            return typed(R.choice(["num", "str", "list"]), d)
        if r < 0.6:
            return expr(d + 1) + "|" + R.choice(filters)
        if r < 0.7:
            return "((" + expr(d + 1) + ") is " + ("not " if R.random() < 0.3 else "") + R.choice(tests) + ")"
        if r < 0.75:
            return "(" + expr(d + 1) + ")" + R.choice(methods)
        if r < 0.85:
            return "(" + expr(d + 1) + " " + R.choice(binops) + " " + expr(d + 1) + ")"
        if r < 0.9:
            return "(" + expr(d + 1) + " if " + expr(d + 1) + " else " + expr(d + 1) + ")"
        if r < 0.95:
            return "not " + expr(d + 1)
        return "[" + expr(d + 1) + ", " + expr(d + 1) + "]"

    def tag(t):
        return (R.choice(ws) + R.choice(["{%", "{%-", "{%+"]) + " " + t + " " + R.choice(["%}", "-%}", "+%}"]) +
                R.choice(ws))

    def stmt(d=0):
        r = R.random()
        if d > 2 or r < 0.35:
            return (R.choice(ws) + R.choice(["{{", "{{-"]) + " " + expr() + " " + R.choice(["}}", "-}}"]) +
                    R.choice(["", "x", "\n", " y\n"]))
        if r < 0.5:
            return (tag("if " + expr()) + body(d) + (tag("elif " + expr()) + body(d) if R.random() < 0.3 else "") +
                    (tag("else") + body(d) if R.random() < 0.4 else "") + tag("endif"))
        if r < 0.65:
            tgt, it = R.choice([("x", expr()), ("x", "messages"), ("k, v", "d.items()"), ("x", "l"), ("c", "s")])
            return (tag("for " + tgt + " in " + it + (" if " + expr() if R.random() < 0.2 else "")) +
                    body(d, loop=True) + (tag("else") + body(d) if R.random() < 0.2 else "") + tag("endfor"))
        if r < 0.75:
            return tag("set " + R.choice(["v", "ns.v", "w"]) + " = " + expr())
        if r < 0.8:
            return tag("set blk") + body(d) + tag("endset") + "{{ blk }}"
        if r < 0.85:
            return "{# c #}" + R.choice(ws)
        if r < 0.9:
            return tag("macro m(a, b=2)") + body(d) + tag("endmacro") + "{{ m(" + expr() + ") }}"
        if r < 0.95:
            return tag("with q = " + expr()) + body(d) + tag("endwith")
        return tag("filter upper") + body(d) + tag("endfilter")

    def body(d, loop=False):
        out = "".join(stmt(d + 1) for _ in range(R.randint(1, 3)))
        if loop and R.random() < 0.3:
            out += tag(R.choice(["break", "continue"]))
        if loop and R.random() < 0.3:
            out += "{{ loop.index }}{{ loop.last }}{{ loop.revindex0 }}"
        return out

    return "{% set ns = namespace(v=0) %}" + "".join(stmt() for _ in range(R.randint(1, 4)))


def cmd_random(a):
    import random
    env = make_env(0)
    R = random.Random(a.seed)
    d = os.path.join(a.out, "rnd")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>"}, f)
    conv = os.path.join(d, "conversation.json")
    with open(conv, "w", encoding="utf-8") as f:
        json.dump(RANDOM_CONV, f, ensure_ascii=False)
    counts = [0, 0]
    with open(os.path.join(a.out, "cases.tsv"), "w", encoding="utf-8") as cases:
        for k in range(a.n):
            src = random_template(R)
            path = os.path.join(d, f"{k:04d}.jinja")
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(src)
            agp = k % 2
            _compiled.clear()
            kind, text = render(env, src, {"bos_token": "<s>", "eos_token": "</s>"}, json.loads(json.dumps(RANDOM_CONV)), agp)
            cid = f"{k:04d}"
            with open(os.path.join(a.out, cid + (".ref" if kind == "ok" else ".referr")), "wb") as f:
                f.write(text.encode("utf-8") if kind == "ok" else f"{kind}\t{text}".encode("utf-8"))
            cases.write(f"{cid}\trandom/seed{a.seed}\t{path}\t{conv}\t{agp}\t{kind}\n")
            counts[0 if kind == "ok" else 1] += 1
    print(f"template_ref: {a.n} random templates (seed {a.seed}): {counts[0]} render, {counts[1]} raise or fail in jinja2")
    return 0


def cmd_compare(a):
    lines = [l.rstrip("\n").split("\t") for l in open(os.path.join(a.out, "cases.tsv"), encoding="utf-8")]
    per = {}
    fails = 0
    for cid, name, path, cpath, agp, kind in lines:
        group = name.split("/")[0]
        st = per.setdefault(group, [0, 0, 0])  # identical text, matching errors, failed
        base = os.path.join(a.out, cid)
        rc = int(open(base + ".rc").read().strip() or "99")
        got = open(base + ".got", "rb").read()
        err = open(base + ".stderr", "rb").read().decode("utf-8", "replace")
        how = f"clens chat {path} --messages {cpath} {'--add-generation-prompt' if agp == '1' else '--no-add-generation-prompt'}"
        if kind == "ok":
            ref = open(base + ".ref", "rb").read()
            if rc == 0 and got == ref:
                st[0] += 1
                continue
            fails += 1
            st[2] += 1
            if rc != 0:
                print(f"FAIL {cid} {name} {os.path.basename(cpath)} agp={agp}: clens failed (rc {rc}): {err.strip()}\n  {how}")
            else:
                i = next((k for k in range(min(len(got), len(ref))) if got[k] != ref[k]), min(len(got), len(ref)))
                print(f"FAIL {cid} {name} {os.path.basename(cpath)} agp={agp}: first difference at byte {i}:\n"
                      f"  jinja2: {ref[max(0, i - 40):i + 40]!r}\n  clens:  {got[max(0, i - 40):i + 40]!r}\n  {how}")
            continue
        rkind, rmsg = open(base + ".referr", encoding="utf-8").read().split("\t", 1)
        ok = rc == 1 and not got
        if ok and rkind == "raise":
            ok = ("raise_exception: " + rmsg) in err
        if ok:
            st[1] += 1
        else:
            fails += 1
            st[2] += 1
            print(f"FAIL {cid} {name} {os.path.basename(cpath)} agp={agp}: jinja2 {rkind}: {rmsg[:200]!r}; "
                  f"clens rc {rc}: {err.strip()[:300]!r}\n  {how}")
    total = len(lines)
    print("template parity by group (identical output / matching errors / failed):")
    for g in sorted(per):
        print(f"  {g:34s} {per[g][0]:4d} {per[g][1]:4d} {per[g][2]:4d}")
    print(f"template parity: {total} cases, {sum(p[0] for p in per.values())} byte-identical, "
          f"{sum(p[1] for p in per.values())} matching errors, {fails} failed")
    return 1 if fails else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--root", required=True)
    r.add_argument("--shared", required=True)
    r.add_argument("--out", required=True)
    q = sub.add_parser("random")
    q.add_argument("--root", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--n", type=int, default=300)
    c = sub.add_parser("compare")
    c.add_argument("--out", required=True)
    a = ap.parse_args()
    return {"render": cmd_render, "random": cmd_random, "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
