#!/usr/bin/python3
"""Plain PyTorch forward of a model folder, timed like bench/bench_model.c (issue 6 item 4).

The baseline clens is compared with in `make bench` (bench/model.sh): Debian python3-torch,
torch.set_num_threads(2), weights in --dtype (fp32 or bf16, widened/kept from the bf16
checkpoint), math in that dtype as transformers' eager path does it (RMSNorm in fp32, softmax
in fp32, everything else in --dtype). Config handling and RoPE tables come from
tools/ref_forward.py (the independent reference); the forward itself is written here with
F.linear and a preallocated KV cache, so prefill and decode do the same work as clens:

  prefill  T tokens (default 300) into an empty cache, logits of the last token only;
           one warm-up, then best of --reps;
  decode   --decode greedy steps (default 16) after that prefill, one warm-up pass of 4 steps,
           then best of --reps (the cache is cut back to T tokens before each pass).

With --full-layers N on a few-layer model of a deeper shape every block is timed and times
are scaled per layer exactly as bench_model does: t_full = t_outside_blocks + mean_block * N.

bf16 is skipped (exit 0, "skipped" in the JSON, with the reason) on CPUs without
avx512_bf16: PyTorch has no fast bf16 CPU kernels there (perf-notes: 155 s for a 0.5B
prefill on Zen 3).

Which kernels ran: a child process repeats one linear of the model's shape with
DNNL_VERBOSE=1 (oneDNN names its implementation, e.g. brg:avx512_core_bf16); without a
oneDNN line the product went to BLAS, whose name and OpenBLAS core are read in-process.

Usage:
  bench_torch_model.py --model DIR --dtype fp32 [--tokens 300] [--decode 16] [--reps 3]
                       [--threads 2] [--full-layers N] [--budget-s S] [--json]
  bench_torch_model.py --self-check    this forward vs ref_forward.py (float64) on tiny models
Output: readable lines, and with --json one line "BENCH_TORCH_JSON {...}".
Exit codes: 0 ok (or skipped), 1 error, 2 usage.
"""

import argparse
import ctypes
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_forward as ref  # noqa: E402  (sibling tool: config rules, RoPE tables, safetensors)
from bench_torch import cpu_flags  # noqa: E402  (sibling tool: the kernel benchmark's peer)


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def blas_info():
    """Name of the BLAS library torch loaded and, for OpenBLAS, its core (e.g. Haswell, Zen)."""
    libs = []
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if ("blas" in p or "mkl" in p) and p.startswith("/") and p not in libs:
                libs.append(p)
    for p in libs:
        try:
            lib = ctypes.CDLL(p)
            fn = lib.openblas_get_corename
            fn.restype = ctypes.c_char_p
            cfg = lib.openblas_get_config
            cfg.restype = ctypes.c_char_p
            return "OpenBLAS core %s (%s)" % (fn().decode(), cfg().decode().split(" ")[1])
        except (OSError, AttributeError):
            continue
    return os.path.basename(libs[0]) if libs else "unknown BLAS"


# ---------------------------------------------------------------------------------------------
# Model


class TorchModel:
    def __init__(self, folder, dtype):
        self.dtype = dtype
        # The reference's config rules; its float64 weight loading is replaced below.
        ref.read_config(self, folder)
        ck = ref.Checkpoint(folder)

        def g(name, shape=None):
            st = ck.where.get(name)
            if st is None:
                raise ref.RefError("missing tensor %s" % name)
            e = st.entries[name]
            if shape is not None and tuple(e["shape"]) != tuple(shape):
                raise ref.RefError("tensor %s has shape %s, expected %s" % (name, e["shape"], list(shape)))
            b, end = e["data_offsets"]
            npdt = {"BF16": "<i2", "F32": "<f4", "F16": "<f2"}.get(e["dtype"])
            if npdt is None:
                raise ref.RefError("tensor %s: dtype %s not supported here" % (name, e["dtype"]))
            # Plain reads, not the reference's memory map: the file's pages then do not count in
            # this process's RSS, which is reported.
            with open(st.path, "rb") as fh:
                fh.seek(st.data_start + b)
                arr = np.fromfile(fh, dtype=npdt, count=(end - b) // np.dtype(npdt).itemsize)
            t = torch.from_numpy(arr)
            if e["dtype"] == "BF16":
                t = t.view(torch.bfloat16)
            return t.reshape(e["shape"]).to(dtype).contiguous()

        ref.bind_weights(self, g)
        del ck  # its memory maps were never touched: no resident pages

    # -----------------------------------------------------------------------------------------

    def new_cache(self, n_ctx):
        self.n_ctx = n_ctx
        self.k_cache = [torch.zeros(self.nKV, n_ctx, self.D, dtype=self.dtype) for _ in range(self.L)]
        self.v_cache = [torch.zeros(self.nKV, n_ctx, self.D, dtype=self.dtype) for _ in range(self.L)]
        self.cos, self.sin = {}, {}
        for lt in set(self.layer_types):
            cos, sin, _, _ = ref.rope_tables(self.rope[lt], self.theta, self.D, self.max_pos, n_ctx)
            self.cos[lt], self.sin[lt] = cos.to(self.dtype), sin.to(self.dtype)

    def rms(self, x, w):
        """transformers RMSNorm: variance in fp32, weight applied in the input dtype."""
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return w * xf.to(x.dtype)

    def forward(self, ids, pos0, clock=None):
        """ids: list of T token ids at positions pos0.. (appended to the cache). Returns the
        logits of the last token. clock: list that receives block boundary timestamps."""
        T = len(ids)
        nH, nKV, D = self.nH, self.nKV, self.D
        end = pos0 + T
        h = self.embed[torch.tensor(ids, dtype=torch.int64)]
        qpos = torch.arange(pos0, end)[:, None]
        kpos = torch.arange(0, end)[None, :]
        masks = {}
        for lt in set(self.layer_types):
            ok = kpos <= qpos
            if lt == "sliding_attention":
                ok = ok & (kpos > qpos - self.window)
            m = torch.zeros(T, end, dtype=self.dtype)
            m[~ok] = float("-inf")
            masks[lt] = m
        rep = nH // nKV
        for L, w in enumerate(self.layers):
            if clock is not None:
                clock.append(time.perf_counter())
            lt = self.layer_types[L]
            x = h if self.post_norm else self.rms(h, w["ln_in"])
            q = F.linear(x, w["q"], w["q_b"])
            k = F.linear(x, w["k"], w["k_b"])
            v = F.linear(x, w["v"], w["v_b"])
            if self.qk_norm == "full":
                q, k = self.rms(q, w["q_norm"]), self.rms(k, w["k_norm"])
            q = q.view(T, nH, D)
            k = k.view(T, nKV, D)
            v = v.view(T, nKV, D)
            if self.qk_norm == "head":
                q, k = self.rms(q, w["q_norm"]), self.rms(k, w["k_norm"])
            cos, sin = self.cos[lt][pos0:end], self.sin[lt][pos0:end]
            q = ref.apply_rope(q, cos, sin)
            k = ref.apply_rope(k, cos, sin)
            self.k_cache[L][:, pos0:end] = k.transpose(0, 1)
            self.v_cache[L][:, pos0:end] = v.transpose(0, 1)
            kk = self.k_cache[L][:, :end]
            vv = self.v_cache[L][:, :end]
            if rep > 1:  # transformers repeat_kv
                kk = kk.repeat_interleave(rep, dim=0)
                vv = vv.repeat_interleave(rep, dim=0)
            s = torch.matmul(q.transpose(0, 1), kk.transpose(1, 2)) * (D ** -0.5) + masks[lt]
            p = torch.softmax(s, dim=-1, dtype=torch.float32).to(self.dtype)
            z = torch.matmul(p, vv).transpose(0, 1).reshape(T, nH * D)
            o = F.linear(z, w["o"], w["o_b"])
            h = h + (self.rms(o, w["ln_post_attn"]) if self.post_norm else o)
            x = h if self.post_norm else self.rms(h, w["ln_mlp"])
            y = F.linear(F.silu(F.linear(x, w["gate"], w["gate_b"])) * F.linear(x, w["up"], w["up_b"]),
                         w["down"], w["down_b"])
            h = h + (self.rms(y, w["ln_post_mlp"]) if self.post_norm else y)
        hn = self.rms(h[-1:], self.norm)
        if clock is not None:
            clock.append(time.perf_counter())
        return F.linear(hn, self.lm_head)[0]


# ---------------------------------------------------------------------------------------------


def probe(dtype_name, M, N, K):
    """Child process (DNNL_VERBOSE=1 in its environment): one linear of shape M x K -> N."""
    torch.set_num_threads(2)
    dt = torch.float32 if dtype_name == "fp32" else torch.bfloat16
    x = torch.randn(M, K).to(dt)
    w = torch.randn(N, K).to(dt)
    F.linear(x, w)
    sys.stdout.flush()
    return 0


def kernel_report(dtype_name, shapes):
    """Which implementation torch's linear uses, per M (prefill rows, decode row)."""
    out = []
    for M, N, K in shapes:
        env = dict(os.environ, DNNL_VERBOSE="1", ONEDNN_VERBOSE="1")
        try:
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe", dtype_name,
                                "%d,%d,%d" % (M, N, K)], env=env, capture_output=True, text=True, timeout=300)
            impl = None
            for line in r.stdout.splitlines():
                parts = line.split(",")
                if len(parts) > 4 and parts[0] in ("onednn_verbose", "dnnl_verbose") and parts[1] == "exec":
                    impl = "oneDNN %s %s" % (parts[3], parts[4])
            out.append("M=%d: %s" % (M, impl or "BLAS/ATen (no oneDNN primitive)"))
        except (OSError, subprocess.SubprocessError) as e:
            out.append("M=%d: probe failed (%s)" % (M, e))
    return "; ".join(out)


def self_check():
    """This forward (fp32, prefill + KV-cache decode) against ref_forward's float64 forward on
    tiny models of every architecture: the baseline must compute the same function as clens."""
    import tempfile
    import gen_model
    bad = 0
    ids = [3, 17, 250, 9, 9, 41, 300, 2, 77, 123, 5, 64, 199, 88, 31, 270]
    with tempfile.TemporaryDirectory(prefix="clens-benchtorch-") as tmp:
        for arch in gen_model.ARCHS:
            out = os.path.join(tmp, arch)
            gen_model.write_model(out, arch, dict(gen_model.TINY[arch], tied=arch == "qwen2"), "bf16", seed=3,
                                  quiet=True)
            m = TorchModel(out, torch.float32)
            m.new_cache(32)
            with torch.no_grad():
                got = [m.forward(ids[:12], 0)] + [m.forward([ids[k]], k) for k in range(12, 16)]
                want = ref.Model(out).forward(ids)["logits"]
            err = max(float((g.double() - want[11 + i]).abs().max()) for i, g in enumerate(got))
            ok = err < 1e-4
            bad += not ok
            print("  %-4s %s: prefill last token + 4 decode steps vs float64 reference: max diff %.2g"
                  % ("ok" if ok else "FAIL", arch, err))
    print("self-check: %s" % ("all passed" if not bad else "%d FAILED" % bad))
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="bench_torch_model.py", formatter_class=argparse.RawDescriptionHelpFormatter,
                                 description=__doc__.split("\n\n")[0],
                                 epilog="Example: bench_torch_model.py --model /tmp/m/q7b-4l --dtype bf16 "
                                 "--full-layers 28 --json")
    ap.add_argument("--model", help="model folder (path, required). Example: --model /tmp/m/qwen2-0.5b")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                    help="weights and math dtype (string, default fp32). Example: --dtype bf16")
    ap.add_argument("--tokens", type=int, default=300, help="prefill length (int, default 300)")
    ap.add_argument("--decode", type=int, default=16, help="decode steps per pass (int, default 16; 0 = none)")
    ap.add_argument("--reps", type=int, default=3, help="timed passes after one warm-up, best kept (int, default 3)")
    ap.add_argument("--budget-s", type=float, default=0.0,
                    help="fewer reps if the warm-up says they would exceed S s per phase (float, default 0 = off)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (int, default 2)")
    ap.add_argument("--full-layers", type=int, default=None,
                    help="scale per layer to N layers (int, default: the folder's)")
    ap.add_argument("--label", default=None, help="name in the results (string, default: folder name)")
    ap.add_argument("--no-probe", action="store_true", help="do not probe which kernels torch uses (flag)")
    ap.add_argument("--json", action="store_true", help="also print one line 'BENCH_TORCH_JSON {...}' (flag)")
    ap.add_argument("--self-check", action="store_true",
                    help="compare this forward with tools/ref_forward.py on tiny models (flag)")
    ap.add_argument("--probe", nargs=2, metavar=("DTYPE", "M,N,K"), help=argparse.SUPPRESS)
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    if a.self_check:
        torch.set_num_threads(a.threads)
        return self_check()
    if a.probe:
        M, N, K = (int(v) for v in a.probe[1].split(","))
        return probe(a.probe[0], M, N, K)
    if not a.model or a.tokens < 1 or a.decode < 0 or a.reps < 1 or a.threads < 1:
        print("bench_torch_model.py: need --model DIR and positive --tokens/--reps/--threads (see --help)",
              file=sys.stderr)
        return 2
    label = a.label or os.path.basename(os.path.normpath(a.model))
    torch.set_num_threads(a.threads)
    rec = {"label": label, "model": a.model, "engine": "torch", "dtype": a.dtype, "threads": a.threads,
           "torch": torch.__version__, "tokens": a.tokens, "decode_steps": a.decode,
           "env_openblas": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}}

    def emit():
        if a.json:
            print("BENCH_TORCH_JSON " + json.dumps(rec, separators=(",", ":")))
        sys.stdout.flush()

    if a.dtype == "bf16" and "avx512_bf16" not in cpu_flags():
        rec["skipped"] = ("this CPU has no avx512_bf16: PyTorch has no fast bf16 CPU kernels here "
                          "(oneDNN 2.6 bf16 matmul needs AVX-512; perf-notes: 155 s for a 0.5B prefill on Zen 3)")
        print("bench_torch_model: %s %s skipped: %s" % (label, a.dtype, rec["skipped"]))
        emit()
        return 0
    try:
        # Memory needed: the weights in the compute dtype (+ a transient copy of the largest tensor).
        esz = 4 if a.dtype == "fp32" else 2
        st_bytes = sum(os.path.getsize(os.path.join(a.model, fn)) for fn in os.listdir(a.model)
                       if fn.endswith(".safetensors"))
        need = st_bytes // 2 * esz + (1 << 30)
        avail = mem_available()
        if avail is not None and need > avail:
            rec["skipped"] = "needs about %.1f GB of memory, %.1f GB available" % (need / 1e9, avail / 1e9)
            print("bench_torch_model: %s %s skipped: %s" % (label, a.dtype, rec["skipped"]))
            emit()
            return 0
        t0 = time.perf_counter()
        dt = torch.float32 if a.dtype == "fp32" else torch.bfloat16
        m = TorchModel(a.model, dt)
        rec["load_s"] = time.perf_counter() - t0
        L, Lf, T = m.L, a.full_layers or m.L, a.tokens
        scaled = Lf != L
        rec.update(layers=L, full_layers=Lf)
        if not a.no_probe:
            rec["kernels"] = kernel_report(a.dtype, [(T, m.I, m.H), (1, m.I, m.H)])
        rec["blas"] = blas_info()
        n_ctx = T + a.decode + 8
        m.new_cache(n_ctx)
        g = np.random.default_rng(12345)
        ids = [int(v) for v in g.integers(0, min(m.V, 100000), size=T)]

        def timed(fn):
            clock = []
            t_0 = time.perf_counter()
            out = fn(clock)
            t_1 = time.perf_counter()
            total = t_1 - t_0
            if not scaled or len(clock) != L + 1:
                return out, total, total, total
            blocks = clock[-1] - clock[0]
            return out, total, blocks, total - blocks + blocks / L * Lf

        def reps_for(warm):
            if a.budget_s <= 0 or warm <= 0:
                return a.reps
            return max(1, min(a.reps, int(a.budget_s / warm)))

        with torch.no_grad():
            t0 = time.perf_counter()
            logits = m.forward(ids, 0)
            warm_p = time.perf_counter() - t0
            reps_p = reps_for(warm_p)
            best_p = None
            for _ in range(reps_p):
                logits, tot, blk, sc = timed(lambda ck: m.forward(ids, 0, ck))
                if best_p is None or tot < best_p[0]:
                    best_p = (tot, blk, sc)
            first = int(torch.argmax(logits))
            rec.update(prefill_warmup_s=warm_p, prefill_reps=reps_p, prefill_measured_s=best_p[0],
                       prefill_s=best_p[2])
            print("bench_torch_model: %s torch %s %s, %d threads: prefill %d tokens %.3f s%s "
                  "[warm-up %.3f s, best of %d%s]"
                  % (label, torch.__version__, a.dtype, a.threads, T, best_p[2], " (scaled to %d layers)" % Lf
                     if scaled else "", warm_p, reps_p,
                     "; measured %d layers %.3f s, %.1f ms/block" % (L, best_p[0], 1e3 * best_p[1] / L)
                     if scaled else ""))
            if a.decode > 0:
                best_d, reps_d, r = None, 1, -1
                while r < reps_d:
                    tok, tot_sum, blk_sum, sc_sum = first, 0.0, 0.0, 0.0
                    steps = min(4, a.decode) if r < 0 else a.decode  # a short warm-up pass
                    tr = time.perf_counter()
                    for k in range(steps):
                        lg, tot, blk, sc = timed(lambda ck: m.forward([tok], T + k, ck))
                        tok = int(torch.argmax(lg))
                        tot_sum, blk_sum, sc_sum = tot_sum + tot, blk_sum + blk, sc_sum + sc
                    if r < 0:
                        reps_d = reps_for((time.perf_counter() - tr) * a.decode / steps)
                    elif best_d is None or tot_sum < best_d[0] * a.decode:
                        best_d = (tot_sum / a.decode, blk_sum / a.decode, sc_sum / a.decode)
                    r += 1
                rec.update(decode_reps=reps_d, decode_measured_ms=1e3 * best_d[0], decode_ms=1e3 * best_d[2])
                print("  decode after %d: %.2f ms/token%s [%d steps, best of %d%s]"
                      % (T, 1e3 * best_d[2], " (scaled)" if scaled else "", a.decode, reps_d,
                         "; measured %.2f ms/token, %.2f ms/block" % (1e3 * best_d[0], 1e3 * best_d[1] / L)
                         if scaled else ""))
        rec["rss_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print("  peak RSS %.2f GB; kernels: %s; fp32 BLAS: %s" % (rec["rss_peak"] / 1e9, rec.get("kernels", "n/a"),
                                                                  rec["blas"]))
        emit()
        return 0
    except (ref.RefError, OSError, ValueError, KeyError, json.JSONDecodeError, RuntimeError) as e:
        print("bench_torch_model.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
