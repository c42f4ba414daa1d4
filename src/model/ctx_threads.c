/*
 * ctx_threads.c: the thread count of an inference context
 * (clens_ctx_set_threads, clens_ctx_get_threads). A context starts with its
 * model's clens_model_params.n_threads; clens_forward applies the count for
 * the length of each call on the calling thread (kernels/cpu.c), so nothing
 * process-wide changes when a model is opened or a context runs.
 */
#include "model/model.h"

#include <omp.h>

#include "base/base.h"

int clens_ctx_set_threads(clens_ctx *ctx, int n_threads, clens_error *err)
{
    if (n_threads < 0) return clens_err(err, CLENS_E_ARG, "context: threads must be >= 0 (0 = all cores), got %d",
                                        n_threads);
    ctx->n_threads = n_threads;
    return CLENS_OK;
}

int clens_ctx_get_threads(const clens_ctx *ctx)
{
    return ctx->n_threads > 0 ? ctx->n_threads : omp_get_num_procs();
}
