"""docs/python.md runs as written: its ```python blocks, in order, in one namespace, on a test
model with Qwen2.5's tokenizer (CLENS_MODEL) and the MATH algebra data (CLENS_DATA)."""
import os
import re

import pytest

from conftest import ROOT, SHARED


def doc_blocks():
    text = open(os.path.join(ROOT, "docs", "python.md")).read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_doc_runs(tok_model, monkeypatch, capsys):
    data = os.path.join(SHARED, "data", "math_algebra", "test.jsonl")
    if not os.path.exists(data):
        pytest.skip("no " + data)
    monkeypatch.setenv("CLENS_MODEL", tok_model)
    monkeypatch.setenv("CLENS_DATA", data)
    blocks = doc_blocks()
    assert len(blocks) >= 7
    ns = {"__name__": "docs_python_md"}
    for i, code in enumerate(blocks):
        exec(compile(code, "docs/python.md block %d" % (i + 1), "exec"), ns)
    out = capsys.readouterr().out
    assert "recovery % by layer:" in out and "argument | forward: row 1: token id" in out
    assert ns["k"] is not None  # the hand-patched pair is among the swept ones
