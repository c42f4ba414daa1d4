/*
 * adamw.c: the optimizer of `clens train`: the learning-rate schedule (linear
 * warmup, then cosine decay to a floor), global-norm gradient clipping and
 * AdamW, each written to match torch (torch.nn.utils.clip_grad_norm_,
 * torch.optim.AdamW with decoupled weight decay and bias-corrected moments)
 * so that tools/ref_train.py can check one step against autograd + torch.
 * Weight decay applies to matrices only (embedding, projections, lm_head),
 * never to norm weights or biases (docs/train.md).
 */
#include <math.h>

#include "train/train.h"

double tr_lr_at(int s, int steps, int warmup, double lr, double min_frac)
{
    if (s < warmup) return lr * (double)(s + 1) / (double)warmup;
    double span = (double)(steps - warmup), prog = span > 0 ? (double)(s - warmup) / span : 0.0;
    if (prog > 1) prog = 1;
    double lo = lr * min_frac;
    return lo + 0.5 * (lr - lo) * (1.0 + cos(M_PI * prog));
}

double tr_grad_norm(const float *g, size_t n)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    return sqrt(ss);
}

void tr_clip(float *g, size_t n, double norm, double max_norm)
{
    if (max_norm <= 0) return;
    double coef = max_norm / (norm + 1e-6);
    if (coef >= 1) return;
    float c = (float)coef;
    for (size_t i = 0; i < n; i++) g[i] *= c;
}

void tr_adamw_step(const tr_plan *p, const tr_adamw *o, float *params, const float *grads, float *m, float *v,
                   long t, double lr)
{
    const double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    const float b1 = (float)o->beta1, b2 = (float)o->beta2;
    const float step = (float)(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)o->eps;
    for (int ti = 0; ti < p->n_t; ti++) {
        const tr_tensor *tn = &p->t[ti];
        const float decay = tn->decay ? (float)(1.0 - lr * o->weight_decay) : 1.0f;
        #pragma omp parallel for schedule(static)
        for (size_t j = tn->off; j < tn->off + tn->n; j++) {
            float g = grads[j];
            params[j] *= decay;
            m[j] = b1 * m[j] + (1 - b1) * g;
            v[j] = b2 * v[j] + (1 - b2) * g * g;
            params[j] -= step * m[j] / (sqrtf(v[j]) / bc2s + eps);
        }
    }
}
