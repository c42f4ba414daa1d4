#!/usr/bin/env python3
"""PyTorch peer of bench/bench_kernels.c (used by bench/run.sh, `make bench`).

  bench_torch.py [--quick]              time F.linear on the kernel benchmark's shapes
                                        (K=3584, N=18944; M=300, 64, 29, 16, 1), 2 threads,
                                        fp32 and bf16, best of 3 after a warm-up; prints
                                        "T torch <dtype> <M> <seconds> <GFLOP/s>" lines
                                        and attention on bench_kernels' attention shapes:
                                        "A torch <name> <prefill s> <decode s>" lines
  bench_torch.py --report C.txt T.txt   the ratio table from bench_kernels' "R " lines and
                                        this script's "T " / "A " lines, all measured in the same run

bf16 is skipped on CPUs without avx512_bf16: PyTorch 1.13 has no fast bf16 kernels
there (perf-notes.md: a Qwen2-0.5B forward takes 155 s in bf16 vs 4 s in fp32 on Zen 3),
so the number would measure a fallback, not a peer.
Run it with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (bench/run.sh does): they are
our test environment's OpenBLAS overrides, not PyTorch's normal configuration.
"""
import os
import subprocess
import sys
import time

K, N = 3584, 18944
MS = [300, 64, 29, 16, 1]
# bench_kernels' attention_bench shapes: name, H, Hkv, D, prefill rows T, decode keys TD
ATT = [("qwen2-0.5b", 14, 2, 64, 300, 4096), ("olmo3-7b", 32, 32, 128, 1500, 1500)]


def attention(torch, reps):
    """fp32 causal attention as PyTorch 1.13 computes it on CPU (no fused kernel there):
    q k^T, the causal mask, softmax, times v; kv heads expanded to the query heads
    beforehand (not timed). Prefill of T rows, and one decode row over TD keys."""
    g = torch.Generator().manual_seed(2)
    for name, H, Hkv, D, T, TD in ATT:
        rep = H // Hkv
        q = torch.rand(H, T, D, generator=g) * 2 - 1
        k = (torch.rand(Hkv, TD, D, generator=g) * 2 - 1).repeat_interleave(rep, 0)
        v = (torch.rand(Hkv, TD, D, generator=g) * 2 - 1).repeat_interleave(rep, 0)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        scale = D ** -0.5

        def prefill():
            s = torch.matmul(q, k[:, :T].transpose(1, 2)) * scale
            s.masked_fill_(mask, float("-inf"))
            return torch.matmul(torch.softmax(s, -1), v[:, :T])

        def decode():
            s = torch.matmul(q[:, :1], k.transpose(1, 2)) * scale
            return torch.matmul(torch.softmax(s, -1), v)

        best = []
        for fn in (prefill, decode):
            fn()
            b = 1e30
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                b = min(b, time.perf_counter() - t0)
            best.append(b)
        print(f"A torch {name} {best[0]:.6f} {best[1]:.6f}")
        sys.stdout.flush()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def blas_libs():
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if any(s in p for s in ("blas", "mkl", "dnnl")):
                    libs.add(os.path.realpath(p))
    except OSError:
        pass
    return sorted(libs)


def onednn_impl(dtype):
    """Which oneDNN primitive/implementation F.linear uses for dtype (one call, verbose)."""
    code = ("import torch, torch.nn.functional as F\n"
            "torch.set_num_threads(2)\n"
            f"w = torch.randn({N // 8}, {K}).to(torch.{dtype}); x = torch.randn(300, {K}).to(torch.{dtype})\n"
            "F.linear(x, w); F.linear(x, w)\n")
    env = dict(os.environ, DNNL_VERBOSE="1", ONEDNN_VERBOSE="1")
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=300).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    for line in out.splitlines():
        f = line.split(",")
        if len(f) > 5 and f[1] == "exec":
            return f"oneDNN {f[3]} {f[4]}"
    return "aten addmm -> BLAS sgemm (no oneDNN primitive; the BLAS library is listed below)"


def run(quick):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    reps = 1 if quick else 3
    flags = cpu_flags()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}")
    cap = [l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability" in l]
    print(f"CPU capability usage: {cap[0] if cap else '?'}; mkldnn {torch.backends.mkldnn.is_available()}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    dtypes = ["float32"]
    if "avx512_bf16" in flags:
        dtypes.append("bfloat16")
    else:
        print("torch bf16: skipped, CPU lacks avx512_bf16 (PyTorch 1.13 falls back to slow "
              "bf16 kernels there; see tools/bench_torch.py)")
    g = torch.Generator().manual_seed(1)
    for dt in dtypes:
        tdt = getattr(torch, dt)
        w = (torch.rand(N, K, generator=g) * 0.1 - 0.05).to(tdt)
        x_all = (torch.rand(max(MS), K, generator=g) * 2 - 1).to(tdt)
        print(f"torch {dt}: F.linear kernel: {onednn_impl(dt)}")
        for M in MS:
            x = x_all[:M].contiguous()
            F.linear(x, w)
            best, bestc = 1e30, 1e30
            for _ in range(reps):
                t0, c0 = time.perf_counter(), time.process_time()
                F.linear(x, w)
                best = min(best, time.perf_counter() - t0)
                bestc = min(bestc, (time.process_time() - c0) / torch.get_num_threads())
            gf = 2.0 * M * N * K / best / 1e9
            print(f"T torch {dt} {M} {best:.6f} {gf:.2f} {bestc:.6f}")
            sys.stdout.flush()
        del w, x_all
    attention(torch, reps)
    print("torch libraries: " + ", ".join(blas_libs()))


def report(cfile, tfile):
    clens, torch_t, peaks, alt, att_c, att_t = {}, {}, {}, {}, {}, {}
    for line in open(cfile):
        f = line.split()
        if not f or f[0] != "R":
            continue
        if f[1] == "attn" and len(f) == 6:
            att_c[(f[2], f[3])] = (float(f[4]), float(f[5]))
        elif f[1] == "gemm":
            clens[(f[2], int(f[3]))] = (float(f[4]), float(f[7]) if len(f) > 7 else float(f[4]))
        elif f[1] == "peak":
            peaks[f[2]] = float(f[3])
        elif f[1] == "alt":
            alt[f[2]] = float(f[4])
    for line in open(tfile):
        f = line.split()
        if len(f) >= 5 and f[0] == "T":
            torch_t[(f[2], int(f[3]))] = (float(f[4]), float(f[6]) if len(f) > 6 else float(f[4]))
        elif len(f) == 5 and f[0] == "A":
            att_t[f[2]] = (float(f[3]), float(f[4]))
    print(f"\n== clens vs PyTorch, same shapes (K={K}, N={N}), same run; "
          "ratio = PyTorch time / clens time (> 1: clens faster)")
    print("   clens fp32 paths read bf16 weights (2 bytes); PyTorch fp32 reads fp32 weights (4 bytes),"
          " as it would run a bf16 checkpoint upcast to fp32.")
    print("   [on CPU]: the same on each side's CPU time per thread (other processes on a shared"
          " machine do not count)")
    print(f"{'clens path':<12} {'torch':<9} {'M':>4} {'clens ms':>10} {'torch ms':>10} {'ratio':>7} {'[on CPU]':>9}")
    pairs = [(p, "float32") for p in ("avx512", "avx2", "portable")] + [("avx512-bf16", "bfloat16")]
    for p, dt in pairs:
        for M in MS:
            c, t = clens.get((p, M)), torch_t.get((dt, M))
            if c is None:
                continue
            if t is None:
                print(f"{p:<12} {dt:<9} {M:>4} {c[0] * 1e3:>10.2f} {'skipped':>10}")
                continue
            print(f"{p:<12} {dt:<9} {M:>4} {c[0] * 1e3:>10.2f} {t[0] * 1e3:>10.2f} {t[0] / c[0]:>7.2f} "
                  f"[{t[1] / c[1]:>7.2f}]")
    if att_c:
        print("\n== attention, fp32, same run: clens (online softmax over the KV cache) vs PyTorch"
              " (matmul, causal mask, softmax, matmul); ratio = PyTorch time / clens time")
        print(f"{'shape':<11} {'clens path':<12} {'prefill ms':>10} {'torch ms':>9} {'ratio':>6} "
              f"{'decode ms':>10} {'torch ms':>9} {'ratio':>6}")
        for (name, p), (cp, cd) in att_c.items():
            t = att_t.get(name)
            if t is None:
                print(f"{name:<11} {p:<12} {cp * 1e3:>10.2f} {'n/a':>9}")
                continue
            print(f"{name:<11} {p:<12} {cp * 1e3:>10.2f} {t[0] * 1e3:>9.2f} {t[0] / cp:>6.2f} "
                  f"{cd * 1e3:>10.3f} {t[1] * 1e3:>9.3f} {t[1] / cd:>6.2f}")


def main():
    a = sys.argv[1:]
    if a and a[0] == "--report" and len(a) == 3:
        report(a[1], a[2])
    elif not a or a == ["--quick"]:
        run(bool(a))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
