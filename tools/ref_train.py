#!/usr/bin/python3
"""Independent check of one `clens train` step with torch autograd (docs/train.md).

The model is tools/ref_forward.py's (written from transformers 4.57, never from clens' C code),
its weights made float64 leaf tensors. For the batch clens used in its first step
(`clens train ... --dump-first-step DUMP` writes DUMP/batch.json with ids, mask, loss,
grad_norm, lr and DUMP/grad.<tensor>.npy), this computes
  loss = mean over target tokens of -log softmax(logits[t-1])[ids[t]]   (mask[t] = 1)
with torch and its gradients by autograd, and compares them with clens' loss and every
tensor's gradient. Then, on clens' gradients, torch.nn.utils.clip_grad_norm_ and one
torch.optim.AdamW step (betas 0.9/0.95, eps 1e-8, weight decay on matrices only) must give
every tensor of the folder clens wrote after --steps 1, and the same update. Errors are per
tensor, max |clens - torch| / max |torch|.

Usage:
  ref_train.py --init DIR --dump DUMP --after DIR --lr-max X --weight-decay X --clip X [--tol 1e-4]
Exit codes: 0 all within tolerance, 1 a check failed, 2 usage.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_forward as rf  # noqa: E402

F64 = torch.float64


def load_leaf_model(folder):
    """ref_forward's Model with every weight a float64 leaf tensor requiring grad."""
    m = rf.Model.__new__(rf.Model)
    m.folder, m.dtype = folder, F64
    rf.read_config(m, folder)
    ck = rf.Checkpoint(folder)
    params = {}

    def g(name, shape):
        t = ck.get(name, shape, F64).clone().requires_grad_(True)
        params[name] = t
        return t
    rf.bind_weights(m, g)
    return m, params


def batch_loss(m, ids, mask):
    total, n = 0.0, 0
    for row, mk in zip(ids, mask):
        logits = m.forward(row)["logits"]
        logp = torch.log_softmax(logits, dim=-1)
        for t in range(1, len(row)):
            if mk[t]:
                total = total - logp[t - 1, row[t]]
                n += 1
    return total / n, n


def rel(a, b):
    den = float(np.max(np.abs(b)))
    return float(np.max(np.abs(a - b))) / (den if den > 0 else 1.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", required=True, help="HF folder of the weights before the step (path)")
    ap.add_argument("--dump", required=True, help="folder written by --dump-first-step (path)")
    ap.add_argument("--after", help="HF folder clens wrote after one step (path)")
    ap.add_argument("--weight-decay", type=float, default=0.1, help="AdamW decay (float, default 0.1)")
    ap.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (float, default 1.0)")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative tolerance (float, default 1e-4)")
    a = ap.parse_args(argv)
    with open(os.path.join(a.dump, "batch.json")) as f:
        b = json.load(f)
    m, params = load_leaf_model(a.init)
    loss, n = batch_loss(m, b["ids"], b["mask"])
    loss.backward()
    ok = True
    le = abs(float(loss) - b["loss"]) / abs(float(loss))
    print("  loss: torch %.8f clens %.8f (rel %.1e), %d targets" % (float(loss), b["loss"], le, n))
    ok &= le <= a.tol
    worst = (0.0, "")
    for name, t in params.items():
        g_c = np.load(os.path.join(a.dump, "grad.%s.npy" % name)).astype(np.float64)
        e = rel(g_c, t.grad.numpy())
        worst = max(worst, (e, name))
    print("  gradients: %d tensors, worst relative error %.2e (%s)" % (len(params), worst[0], worst[1]))
    ok &= worst[0] <= a.tol
    gn = float(torch.sqrt(sum((t.grad ** 2).sum() for t in params.values())))
    print("  gradient norm: torch %.8f clens %.8f" % (gn, b["grad_norm"]))
    ok &= abs(gn - b["grad_norm"]) <= a.tol * gn
    if a.after:
        # The optimizer step is checked on clens' own gradients (checked against autograd
        # above): the first AdamW step is lr * g / (|g| + 1e-8), sign-like, so an element with
        # |g| near 1e-8 turns the fp32 rounding of its gradient into a different step of up
        # to lr. Given the same gradients, torch's clip + AdamW must give clens' weights.
        for name, t in params.items():
            t.grad = torch.from_numpy(np.load(os.path.join(a.dump, "grad.%s.npy" % name)).astype(np.float64))
        plist = list(params.values())
        torch.nn.utils.clip_grad_norm_(plist, a.clip)
        decay = [t for t in plist if t.dim() == 2]
        nodecay = [t for t in plist if t.dim() != 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                                 {"params": nodecay, "weight_decay": 0.0}],
                                lr=b["lr"], betas=(0.9, 0.95), eps=1e-8)
        before = {k: v.detach().clone() for k, v in params.items()}
        opt.step()
        ck = rf.Checkpoint(a.after)
        worst, worst_u = (0.0, ""), (0.0, "")
        for name, t in params.items():
            c = ck.get(name, tuple(t.shape), F64).numpy()
            worst = max(worst, (rel(c, t.detach().numpy()), name))
            du_c, du_t = c - before[name].numpy(), (t.detach() - before[name]).numpy()
            worst_u = max(worst_u, (rel(du_c, du_t), name))
        print("  clip + AdamW step (lr %.3g): worst relative error of the weights %.2e (%s), of the updates %.2e (%s)"
              % (b["lr"], worst[0], worst[1], worst_u[0], worst_u[1]))
        # The update (after - before) is also compared, at 10x the tolerance: clens stores fp32
        # weights, whose rounding (ulp of |w| <= 2: 2.4e-7) is ~1e-4 of a 1e-3 step.
        ok &= worst[0] <= a.tol and worst_u[0] <= 10 * a.tol
    print("  ref_train: %s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
