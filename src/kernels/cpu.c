/*
 * cpu.c: CPU feature detection (CPUID + XGETBV) and kernel-path selection.
 * The shipped binary is built for a portable baseline; faster paths are chosen
 * here at run time. CLENS_KERNEL=portable|avx2|avx512|avx512-bf16 overrides.
 */
#include "kernels/kernels.h"

#include <cpuid.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

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

int kern_get_threads(void)
{
    return g_threads > 0 ? g_threads : omp_get_max_threads();
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
