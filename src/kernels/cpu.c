/*
 * cpu.c: CPU feature detection (CPUID + XGETBV) and kernel-path selection.
 * The shipped binary is built for a portable baseline; faster paths are chosen
 * here at run time. CLENS_KERNEL=portable|avx2|avx512|avx512-bf16 overrides.
 *
 * Thread count under load (docs/perf.md): every matrix product is one OpenMP
 * parallel region with a static split, so it ends when its slowest thread
 * does. When other processes keep the cores busy, one of our threads is
 * descheduled for a whole time slice in most regions, and libgomp's default
 * spin-waiting makes it worse (the waiting thread burns the slice the late
 * one needs): Qwen2-0.5B decode measured 870-1,400 ms/token beside about ten
 * runnable processes on 2 cores, against 128-220 with passive waiting and
 * 167-191 on one thread. libgomp reads its wait policy only from the
 * environment at load time, so the library cannot change it; it does the
 * other thing: for short products (kern_threads_for, below 1e8
 * multiply-adds: decode, small batches) it uses at most (cores - other runnable
 * threads), counted from /proc/loadavg at most every 50 ms (the smaller of
 * two successive counts). Results do not
 * depend on the thread count (kernels.h), so this changes speed only.
 * CLENS_ADAPT_THREADS=0 turns it off.
 */
#include "kernels/kernels.h"

#include <cpuid.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static kern_cpu g_cpu;
static int g_cpu_done;
/* Per calling thread (the caller's, not the OpenMP workers'): each context
 * runs its forward passes with its own thread count (clens_forward sets it
 * for the call and restores it), so opening a model or running one context
 * never changes the threads of another context or of the application. */
static _Thread_local int g_threads;

static void detect(void)
{
    unsigned a, b, c, d;
    int osxsave = 0, ymm_ok = 0, zmm_ok = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        unsigned fam = (a >> 8) & 15, mod = (a >> 4) & 15;
        if (fam == 15) fam += (a >> 20) & 255;
        if (fam >= 6) mod |= ((a >> 16) & 15) << 4;
        g_cpu.family = (int)fam;
        g_cpu.model = (int)mod;
        g_cpu.fma = (c >> 12) & 1;
        g_cpu.f16c = (c >> 29) & 1;
        osxsave = (c >> 27) & 1;
    }
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        ymm_ok = (lo & 0x6) == 0x6;
        zmm_ok = (lo & 0xe6) == 0xe6;
    }
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        g_cpu.avx2 = ymm_ok && ((b >> 5) & 1);
        g_cpu.avx512f = zmm_ok && ((b >> 16) & 1);
        g_cpu.avx512bw = zmm_ok && ((b >> 30) & 1);
        g_cpu.avx512vl = zmm_ok && ((b >> 31) & 1);
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d))
        g_cpu.avx512_bf16 = zmm_ok && ((a >> 5) & 1);
    if (!ymm_ok) g_cpu.fma = g_cpu.f16c = 0;
    g_cpu_done = 1;
}

const kern_cpu *kern_cpu_get(void)
{
    if (!g_cpu_done) detect();
    return &g_cpu;
}

const char *kern_path_name(kern_path p)
{
    static const char *names[] = {"portable", "avx2", "avx512", "avx512-bf16"};
    return p >= 0 && p < KERN_PATH_COUNT ? names[p] : "unknown";
}

int kern_path_available(kern_path p)
{
    const kern_cpu *c = kern_cpu_get();
    switch (p) {
    case KERN_PATH_PORTABLE: return 1;
    case KERN_PATH_AVX2: return c->avx2 && c->fma && c->f16c;
    case KERN_PATH_AVX512: return c->avx512f && c->avx512bw && c->avx512vl && c->f16c;
    case KERN_PATH_AVX512_BF16: return c->avx512f && c->avx512bw && c->avx512vl && c->avx512_bf16;
    default: return 0;
    }
}

kern_path kern_path_default(void)
{
    const char *o = getenv("CLENS_KERNEL");
    if (o && *o) {
        for (int p = 0; p < KERN_PATH_COUNT; p++)
            if (strcmp(o, kern_path_name(p)) == 0)
                return kern_path_available(p) ? (kern_path)p : KERN_PATH_PORTABLE;
        return KERN_PATH_PORTABLE;
    }
    /* The default path keeps fp32 activations (rulings R1): the bf16-dot path
     * is opt-in only. */
    if (kern_path_available(KERN_PATH_AVX512)) return KERN_PATH_AVX512;
    if (kern_path_available(KERN_PATH_AVX2)) return KERN_PATH_AVX2;
    return KERN_PATH_PORTABLE;
}

void kern_set_threads(int n)
{
    g_threads = n > 0 ? n : omp_get_num_procs();
    omp_set_num_threads(g_threads);
}

/* Runnable scheduling entities on the machine now (the 4th field of
 * /proc/loadavg, "running/total"), or -1 if unknown. */
static int runnable_now(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return -1;
    double a, b, c;
    int run = -1, tot;
    if (fscanf(f, "%lf %lf %lf %d/%d", &a, &b, &c, &run, &tot) != 5) run = -1;
    fclose(f);
    return run;
}

static _Atomic int g_adapt = -1;      /* -1 unread, 0 off, 1 on (CLENS_ADAPT_THREADS) */
static _Atomic int g_free = 0;        /* cores not taken by others at the last sample; 0 unknown */
static _Atomic long long g_sample_ms; /* time of the last sample */
static _Atomic int g_last_nt;         /* the count handed out last (our own runnable threads) */
static _Atomic int g_others_prev;     /* other runnable threads at the sample before */

/* Cores left to us: online cores minus runnable threads that are not ours.
 * Ours: the calling thread plus the g_last_nt - 1 workers of the last region
 * (busy, or spinning at its end); an overestimate of ours only keeps more
 * threads, so a quiet machine never loses one. */
static int free_cores(int base)
{
    int ad = atomic_load_explicit(&g_adapt, memory_order_relaxed);
    if (ad < 0) {
        const char *e = getenv("CLENS_ADAPT_THREADS");
        ad = !(e && strcmp(e, "0") == 0);
        atomic_store(&g_adapt, ad);
    }
    if (!ad || base <= 1) return base;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    long long last = atomic_load_explicit(&g_sample_ms, memory_order_relaxed);
    int fr = atomic_load_explicit(&g_free, memory_order_relaxed);
    if (fr == 0 || ms - last >= 50) {
        atomic_store_explicit(&g_sample_ms, ms, memory_order_relaxed);
        int run = runnable_now(), ncpu = omp_get_num_procs(), ours = atomic_load(&g_last_nt);
        if (ours < 1) ours = 1;
        int others = run < 0 ? 0 : run - ours;
        if (others < 0) others = 0;
        /* the smaller of two successive samples: a process that was runnable
         * for an instant (a shell, a kernel thread) does not cost a thread */
        int prev = atomic_exchange_explicit(&g_others_prev, others, memory_order_relaxed);
        fr = ncpu - (others < prev ? others : prev);
        if (fr < 1) fr = 1;
        atomic_store_explicit(&g_free, fr, memory_order_relaxed);
    }
    return fr < base ? fr : base;
}

/* Long regions amortise a descheduled thread's wait, and each thread is a
 * claim on a fair share of the cores: products of >= 1e8 multiply-adds
 * (prefill's, a few ms each) keep the configured count; measured with
 * bench/load.sh beside 2 busy loops on 2 cores: 0.5B prefill 2.2x quiet with
 * 2 threads against 3.1x with 1 (decode: 2.5x with 1 thread, 4.1x with 2).
 * Beside one busy loop (quiet 1.17 s), since the dot form's threads take
 * chunks dynamically (kern_simd.inc): 2 threads 1.94-2.17 s, 1 thread
 * 2.21-2.30 s (2 threads with a static split: 2.5-2.6 s). */
#define KERN_LONG_REGION_MACS 1e8

int kern_threads_for(double macs)
{
    if (macs < 1e6) return 1; /* a parallel region costs more than it saves */
    if (macs < KERN_LONG_REGION_MACS) return kern_get_threads();
    int nt = g_threads > 0 ? g_threads : omp_get_max_threads();
    atomic_store_explicit(&g_last_nt, nt, memory_order_relaxed);
    return nt;
}

/* 16 per thread: measured beside one busy loop, 0.5B prefill 1.88-1.98 s
 * with 8, 16 or 32 alike (quiet 1.18); short products keep one share per
 * thread: 0.5B decode 34.8 ms/token against 36.2 with 32 chunks. */
int kern_chunks_for(double macs, int nt)
{
    return macs < KERN_LONG_REGION_MACS || nt <= 1 ? nt : nt * 16;
}

int kern_get_threads(void)
{
    int base = g_threads > 0 ? g_threads : omp_get_max_threads();
    int nt = free_cores(base);
    atomic_store_explicit(&g_last_nt, nt, memory_order_relaxed);
    return nt;
}

kern_threads_saved kern_threads_push(int n)
{
    kern_threads_saved s = {g_threads, omp_get_max_threads()};
    kern_set_threads(n);
    return s;
}

void kern_threads_pop(kern_threads_saved s)
{
    g_threads = s.threads;
    omp_set_num_threads(s.omp_threads);
}
