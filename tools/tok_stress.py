#!/usr/bin/env python3
"""Writes the tokenizer stress corpus (deterministic; committed):
  tests/data/tokenizer/stress.jsonl        {"text": ...} lines, valid UTF-8
  tests/data/tokenizer/invalid_utf8.jsonl  {"hex": ...} lines with invalid UTF-8
                                           and "bad": offset of the first invalid byte
Contents: every Unicode general category, CJK, Hangul (precomposed and
conjoining jamo), emoji with ZWJ / skin tones / flags / keycaps, combining
marks in and out of canonical order, RTL scripts, whitespace runs of every
kind, CRLF and tabs, digits of every length and script, English contractions
with Unicode case-folding traps, special-token strings inside text, control
characters, noncharacters, long words (heap merge path), code and LaTeX.

usage: tools/tok_stress.py [OUT_DIR]   (default tests/data/tokenizer)
"""
import json
import os
import sys
import unicodedata as ud

CATS = ["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi",
        "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn"]


def by_category():
    cats = {c: [] for c in CATS}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = ud.category(chr(cp))
        if c in cats:
            cats[c].append(cp)
    return cats


def spread(lst, k):
    if len(lst) <= k:
        return lst
    step = len(lst) / k
    return [lst[int(i * step)] for i in range(k)]


def texts():
    out = []
    cats = by_category()
    for c in CATS:
        sample = "".join(chr(x) for x in spread(cats[c], 96))
        out.append(sample)
        out.append(" ".join(sample))
        out.append("x" + "a1 ".join(sample[:40]) + "'s")
        out.append("\n".join(sample[:30]) + "\r\n")
    # CJK, Japanese, Korean
    out += [
        "中文测试：我们今天学习分词器。北京欢迎你！",
        "日本語のテキスト、カタカナとひらがな。東京タワー１２３",
        "한국어 텍스트입니다. 안녕하세요, 세계!",
        "\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af",          # conjoining jamo -> NFC composes
        "\u1100\u1161 \uac00\u11a8 \u1100\u1161\u11a8\u11a8",
        "𠀀𠀁𠀂 𪚥 𫝀 㐀㐁 豈更",
        "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ　１２３　！？",
    ]
    # emoji
    out += [
        "👩‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 🏴‍☠️ ❤️‍🔥 🧑🏽‍🚀",
        "👍🏻👍🏼👍🏽👍🏾👍🏿 🇺🇸🇫🇷🇯🇵🇩🇪 1️⃣ #️⃣ *️⃣",
        "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩😘😗☺️😚😙",
        "🏴󠁧󠁢󠁳󠁣󠁴󠁿 flag tag sequence, ©️ ®️ ™️ ↔️",
    ]
    # combining marks, canonical reordering, NFC
    out += [
        "e\u0301 a\u0300 o\u0302 u\u0308 n\u0303 c\u0327",            # compose
        "a\u0323\u0302 a\u0302\u0323 q\u0307\u0323 q\u0323\u0307",    # reorder
        "\u0041\u030a \u212b \u00c5 \u2126 \u03a9",                    # singletons
        "ệ ḍ̇ ṩ ǖ \u1e69 \u1e0b\u0323",
        "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u: Tie\u0302\u0301ng Vie\u0323\u0302t",
        "हिन्दी भाषा क़ ख़ ग़ ज़ ड़ ढ़ फ़ य़ \u0915\u093c",
        "\u09c7\u09be \u09cb \u0b47\u0b3e \u0bc6\u0bbe \u0dd9\u0dcf",      # vowel compositions
        "\U00011935\U00011930 \U00011938 (Dives Akuru, composed only since Unicode 13)",
        "ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ ℌ ℍ ① ⑴ ㈱ ㎏ ¼ ½ ¾ ² ³",
        "x\u0345\u0301\u0308 \u0f73 \u0f75 \u0f81 \u0344",
        "\u0301\u0301 leading marks \u0300",
        "Z\u0351\u0352\u0357\u035b\u0346\u0312\u0308\u0301\u0300\u0303\u0309\u0305\u0304 zalgo",
    ]
    # RTL
    out += [
        "العربية: مرحبا بالعالم ١٢٣ ٤٥٦ ۷۸۹",
        "עברית: שָׁלוֹם עוֹלָם 123",
        "mixed \u202ertl override\u202c and \u200fmark\u200e",
        "فارسی: سلام دنیا ۱۲۳۴۵",
    ]
    # whitespace
    out += [
        " " * 1000,
        " " * 999 + "x",
        "a" + " " * 37 + "b",
        "\t\t\tindented\n\t\tcode\n",
        "line1\r\nline2\r\n\r\nline4\r\n",
        "\r\r\n\n\r \r\n \n",
        "  \n\n   \n \t\n",
        "trailing   ",
        "\u00a0\u00a0nbsp\u00a0word\u00a0\u00a0",
        "\u3000ideographic\u3000space\u3000",
        "nel\u0085\u0085x\u0085 y",
        "ls\u2028ps\u2029end",
        "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f thin",
        "\u180e mongolian vowel separator\u180ex",
        "\u200b zero width\u200bspace",
        "\u000b\u000c vertical tab and form feed \u000b\u000c",
        "\n" * 50,
        " \n" * 30,
        "x \n y \n\n z \r\n w",
    ]
    # digits
    for n in range(1, 41):
        out.append("".join(str((i * 7 + n) % 10) for i in range(n)))
    out += [
        " ".join("".join(str(i % 10) for i in range(n)) for n in range(1, 25)),
        "3.14159 -2.5e-10 1,234,567.89 0x1F 0b1010 1e100",
        "٠١٢٣٤٥٦٧٨٩ ۰۱۲۳۴۵۶۷۸۹ ०१२३४५६७८९ ০১২৩৪৫৬৭৮৯ ๐๑๒๓๔๕๖๗๘๙",
        "Ⅰ Ⅱ Ⅲ Ⅳ ⅰⅱⅲ ¹²³ ₁₂₃ ½ ⅓ 〇一二三 𝟎𝟏𝟐𝟑 ①②③",
        "x12345y 12345abc abc12345 a1b2c3",
        "9" * 10000,
    ]
    # contractions and case folding
    out += [
        "I'm you're they've he'll she'd it's don't can't won't y'all",
        "I'M YOU'RE THEY'VE HE'LL SHE'D IT'S DON'T",
        "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D 'Re 'rE 'Ll 'lL",
        "'\u017f '\u017ft '\u212a 'k 'K '\u00df '\u1e9e '\u0130 '\u0131 '\ufb05 '\ufb06 '\uff33 '\uff53 '\u01c5 '\u01c6 '\u01c4",
        "'\u017f'\u212a'\u212b '\u03c2 '\u03a3 '\u1fbe '\u0345 'M\u0301 'LL\u0301 'D\u0307",
        "it\u2019s don\u2019t typographic apostrophes \u2018quoted\u2019",
        "''s '''t 's's 'd'd x's 1's ,'s",
        "rock'n'roll o'clock ma'am Ol' 'twas",
    ]
    # special tokens in text
    out += [
        "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n<think>",
        "<|endoftext|>",
        "a<|endoftext|>b <|endoftext|> c<|endoftext|><|endoftext|>",
        "<|im_start <|im_start|<|im_start|><|im_end |>",
        "<think>reasoning</think> <tool_call>{}</tool_call> <tool_response>",
        "|||PHONE_NUMBER||| |||EMAIL_ADDRESS||||||IP_ADDRESS|||",
        "<|extra_id_0|><|extra_id_10|><|extra_id_1|> <|pad|> <|endofprompt|>",
        "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>return 1",
        "<|vision_start|><|image_pad|><|vision_end|> <|box_start|>(1,2)<|box_end|>",
        "  <|im_start|>  spaces around  <|im_end|>  ",
        "é<|endoftext|>e\u0301<|endoftext|>\u0301",
    ]
    # control characters, noncharacters, private use
    out += [
        "".join(chr(c) for c in range(0, 32)) + "\x7f",
        "".join(chr(c) for c in range(0x80, 0xa0)),
        "nul\x00inside\x00\x00text",
        "\ufeffBOM at start and \ufeff inside",
        "\ufffe\uffff\U0010fffe\U0010ffff \ufdd0\ufdef",
        "\ue000\ue001\uf8ff \U000f0000\U00100000 private use",
        "\ufe0f\ufe0e variation selectors x\ufe0f \U000e0100",
        "\u200c\u200d joiners a\u200db",
    ]
    # long words (heap merge path) and code
    out += [
        "a" * 5000,
        "ab" * 3000,
        "!" * 2000 + "?" * 10,
        "-" * 300 + "=" * 300,
        "supercalifragilisticexpialidocious" * 40,
        "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n",
        "\\frac{1}{2} + \\sqrt{x^2 + y^2} = \\boxed{42} $\\alpha\\beta$ \\left( \\right)",
        "https://example.com/path?q=1&r=two#frag user@example.org",
        '{"key": "value", "n": [1, 2.5, null, true]}',
        "<html><body><p class=\"x\">Hello &amp; goodbye</p></body></html>",
    ]
    out += ["", " ", "\n", "a", "'", "''", "1", "\u0301", "é", "\r\n"]
    return out


def invalid():
    cases = [
        b"\x80", b"abc\x80def", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(x", b"\xf0\x9f\x98", b"\xf0\x9f\x98x",
        b"\xc0\xaf overlong", b"\xe0\x80\xaf", b"\xed\xa0\x80 surrogate", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80",
        b"\xf5\x80", b"\xff\xfe", b"\xfe", b"ok \xc3\xa9 then \xc3", b"\xe2\x28\xa1", b"\xf8\x88\x80\x80\x80",
        b"text\x80\x80\x80end", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
        b"<|endoftext|>\x80<|im_start|>", b"caf\xe9 latin-1", b"\xc2\x80\xc2", b"\xef\xbb\xbf\xff",
    ]
    out = []
    for b in cases:
        try:
            b.decode("utf-8")
            bad = None
        except UnicodeDecodeError as e:
            bad = e.start
        assert bad is not None, b
        out.append({"hex": b.hex(), "bad": bad})
    return out


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "tokenizer")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "stress.jsonl"), "w", encoding="utf-8") as f:
        for t in texts():
            f.write(json.dumps({"text": t}, ensure_ascii=True) + "\n")
    with open(os.path.join(d, "invalid_utf8.jsonl"), "w", encoding="utf-8") as f:
        for r in invalid():
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
