#!/usr/bin/python3
"""PyTorch training throughput on the shape bench/bench_train.c times (issue 15 item 6).

The same model (Qwen2: pre-norm, q/k/v biases; OLMo-3: post-norm, full-width QK-norm, sliding
layers), written batched from transformers' semantics (as tools/ref_forward.py describes them)
with F.linear, explicit attention (scores, causal or sliding-window mask, softmax; this Debian torch
1.13 has no F.scaled_dot_product_attention) and
F.cross_entropy; fp32; torch.set_num_threads(--threads); one optimizer step is forward,
cross-entropy on every position, backward, clip_grad_norm_(1.0) and torch.optim.AdamW
(betas 0.9/0.95, weight decay 0.1 on matrices). Random weights and token batches.

Usage:
  bench_torch_train.py [--arch qwen2|olmo3] [--layers 4] [--hidden 128] [--heads 4] [--kv-heads 2]
                       [--ffn 384] [--vocab 512] [--window 0] [--batch 32] [--seq 128]
                       [--steps 10] [--warmup-steps 2] [--threads 2]
Output: a readable line and "BENCH_TRAIN_JSON {...}". Exit codes: 0 ok, 1 error, 2 usage.
"""

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as Fn


def rms(x, w, eps=1e-6):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


class Model(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        C, H, K, F, V = a.hidden, a.heads, a.kv_heads, a.ffn, a.vocab
        D = C // H
        self.a, self.D = a, D
        self.olmo = a.arch == "olmo3"
        P = torch.nn.Parameter
        g = torch.Generator().manual_seed(1)

        def mat(n, k):
            return P(torch.randn(n, k, generator=g) * 0.02)
        self.embed = mat(V, C)
        self.layers = torch.nn.ModuleList()
        for i in range(a.layers):
            m = torch.nn.Module()
            m.q, m.k, m.v, m.o = mat(H * D, C), mat(K * D, C), mat(K * D, C), mat(C, H * D)
            m.gate, m.up, m.down = mat(F, C), mat(F, C), mat(C, F)
            if self.olmo:
                m.qn, m.kn = P(torch.ones(H * D)), P(torch.ones(K * D))
                m.pa, m.pm = P(torch.ones(C)), P(torch.ones(C))
            else:
                m.qb, m.kb, m.vb = P(torch.zeros(H * D)), P(torch.zeros(K * D)), P(torch.zeros(K * D))
                m.n1, m.n2 = P(torch.ones(C)), P(torch.ones(C))
            m.sliding = self.olmo and a.window > 0 and not ((i + 1) % 4 == 0 or i == a.layers - 1)
            self.layers.append(m)
        self.norm = P(torch.ones(C))
        self.head = mat(V, C)
        T = a.seq
        inv = 1.0 / (10000.0 ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
        ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None]
        self.cos = torch.cat([ang.cos(), ang.cos()], -1)
        self.sin = torch.cat([ang.sin(), ang.sin()], -1)
        i = torch.arange(T)[:, None]
        j = torch.arange(T)[None]
        self.causal = j <= i
        self.swa_mask = (j <= i) & (j > i - max(a.window, 1))

    def rope(self, x):
        h = x.shape[-1] // 2
        rot = torch.cat([-x[..., h:], x[..., :h]], -1)
        return x * self.cos + rot * self.sin

    def forward(self, ids):
        a, D = self.a, self.D
        B, T = ids.shape
        x = self.embed[ids]
        for m in self.layers:
            inp = x if self.olmo else rms(x, m.n1)
            q = Fn.linear(inp, m.q, None if self.olmo else m.qb)
            k = Fn.linear(inp, m.k, None if self.olmo else m.kb)
            v = Fn.linear(inp, m.v, None if self.olmo else m.vb)
            if self.olmo:
                q, k = rms(q, m.qn), rms(k, m.kn)
            q = self.rope(q.view(B, T, a.heads, D).transpose(1, 2))
            k = self.rope(k.view(B, T, a.kv_heads, D).transpose(1, 2))
            v = v.view(B, T, a.kv_heads, D).transpose(1, 2)
            rep = a.heads // a.kv_heads
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            s = (q @ k.transpose(-1, -2)) * D ** -0.5
            s = s.masked_fill(~(self.swa_mask if m.sliding else self.causal), float("-inf"))
            z = torch.softmax(s, -1) @ v
            o = Fn.linear(z.transpose(1, 2).reshape(B, T, a.heads * D), m.o)
            x = x + (rms(o, m.pa) if self.olmo else o)
            inp = x if self.olmo else rms(x, m.n2)
            y = Fn.linear(Fn.silu(Fn.linear(inp, m.gate)) * Fn.linear(inp, m.up), m.down)
            x = x + (rms(y, m.pm) if self.olmo else y)
        return Fn.linear(rms(x, self.norm), self.head)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="qwen2", choices=["qwen2", "olmo3"])
    for name, d in (("layers", 4), ("hidden", 128), ("heads", 4), ("kv-heads", 2), ("ffn", 384), ("vocab", 512),
                    ("window", 0), ("batch", 32), ("seq", 128), ("steps", 10), ("warmup-steps", 2), ("threads", 2)):
        ap.add_argument("--" + name, type=int, default=d)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = Model(a)
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() == 2], "weight_decay": 0.1},
                             {"params": [p for p in params if p.dim() != 2], "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
    t0, loss = 0.0, None
    for it in range(a.warmup_steps + a.steps):
        if it == a.warmup_steps:
            t0 = time.perf_counter()
        logits = model(ids)
        loss = Fn.cross_entropy(logits[:, :-1].reshape(-1, a.vocab), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    dt = time.perf_counter() - t0
    tps = a.batch * a.seq * a.steps / dt
    n = sum(p.numel() for p in params)
    print("torch train: %s L=%d C=%d H=%d/%d F=%d V=%d window=%d, batch %d x %d, %d threads: "
          "%.1f ms/step, %.0f tokens/s (loss %.3f, %d parameters)"
          % (a.arch, a.layers, a.hidden, a.heads, a.kv_heads, a.ffn, a.vocab, a.window, a.batch, a.seq,
             a.threads, 1e3 * dt / a.steps, tps, float(loss), n))
    print("BENCH_TRAIN_JSON " + json.dumps({"impl": "torch", "torch": torch.__version__, "arch": a.arch,
                                            "layers": a.layers, "hidden": a.hidden, "batch": a.batch,
                                            "seq": a.seq, "threads": a.threads, "steps": a.steps,
                                            "ms_per_step": 1e3 * dt / a.steps, "tokens_per_s": tps,
                                            "params": n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
