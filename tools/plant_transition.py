#!/usr/bin/python3
"""Writes a checkpoint series with a planted schedule, for tests of `clens dynamics`.

Checkpoint at step t is the weight interpolation  W(t) = A + s(t) (B - A)  of two model folders of the
same shape (e.g. two tools/gen_model.py models), tensor by tensor, with the schedule
  logistic:LOC:WIDTH   s(t) = 1 / (1 + exp(-(t - LOC) / WIDTH))  (a sharp switch between two known steps)
  linear               s(t) = (t - t_first) / (t_last - t_first)  (a ramp)
Only the tensors whose names contain one of --only (default: every tensor) are interpolated; the others
are A's, so a chosen direction (e.g. one layer's o_proj) switches on while the rest stays put.
Each checkpoint is OUT/step-NNNNNN/ with A's config and tokenizer files, model.safetensors (F32) and
training.json {"step": t, "schedule": ..., "s": s(t)} (the key `clens train` writes).

Example: plant_transition.py /tmp/a /tmp/b --out /tmp/series --steps 0:2000:100 --schedule logistic:1000:40
Exit codes: 0 ok, 1 error, 2 usage.
"""

import argparse
import json
import math
import os
import shutil
import sys

import numpy as np

from st_file import read_f32, write_f32


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="model folder at s = 0 (path)")
    ap.add_argument("b", help="model folder at s = 1 (path, same tensor names and shapes)")
    ap.add_argument("--out", required=True, help="output folder (path)")
    ap.add_argument("--steps", required=True, help="FIRST:LAST:STRIDE or a comma list (ints)")
    ap.add_argument("--schedule", required=True, help="logistic:LOC:WIDTH | linear")
    ap.add_argument("--only", default="", help="comma-separated name fragments of the tensors to interpolate")
    a = ap.parse_args()
    if ":" in a.steps and "," not in a.steps:
        f, l, st = (int(x) for x in a.steps.split(":"))
        steps = list(range(f, l + 1, st))
    else:
        steps = [int(x) for x in a.steps.split(",")]
    if len(steps) < 2 or steps != sorted(set(steps)):
        print("plant_transition: --steps must be increasing, two or more", file=sys.stderr)
        return 2
    sch = a.schedule.split(":")
    if sch[0] == "logistic" and len(sch) == 3:
        loc, width = float(sch[1]), float(sch[2])
        sched = lambda t: 1 / (1 + math.exp(-(t - loc) / width))
    elif sch == ["linear"]:
        sched = lambda t: (t - steps[0]) / (steps[-1] - steps[0])
    else:
        print("plant_transition: --schedule expects logistic:LOC:WIDTH or linear", file=sys.stderr)
        return 2
    only = [x for x in a.only.split(",") if x]
    A = read_f32(os.path.join(a.a, "model.safetensors"), "plant_transition")
    B = read_f32(os.path.join(a.b, "model.safetensors"), "plant_transition")
    if set(A) != set(B) or any(A[k].shape != B[k].shape for k in A):
        print("plant_transition: the two models differ in tensor names or shapes", file=sys.stderr)
        return 1
    os.makedirs(a.out, exist_ok=True)
    for t in steps:
        s = sched(t)
        d = os.path.join(a.out, "step-%06d" % t)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(a.a):
            if f != "model.safetensors" and not f.startswith("training") and os.path.isfile(os.path.join(a.a, f)):
                shutil.copy(os.path.join(a.a, f), os.path.join(d, f))
        mix = {}
        for k in A:
            if not only or any(o in k for o in only):
                mix[k] = (A[k].astype(np.float64) + s * (B[k].astype(np.float64) - A[k].astype(np.float64))).astype(np.float32)
            else:
                mix[k] = A[k]
        write_f32(os.path.join(d, "model.safetensors"), mix)
        with open(os.path.join(d, "training.json"), "w") as f:
            json.dump({"format": "plant_transition", "step": t, "schedule": a.schedule, "s": s}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
