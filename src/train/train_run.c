/*
 * train_run.c: the training loop of `clens train` (docs/train.md). It fixes
 * the settings (flags, or the shape of an --init folder, plus the sha256 of
 * the data and tokenizer) and their hash, refuses an output folder trained
 * with other settings (naming the first differing key), resumes from the
 * last state file, then for every step: the batch of that step, loss and
 * gradients (fp32 math, train_math.inc), global-norm clipping, the scheduled
 * learning rate and AdamW. At step 0 and at `checkpoints` evenly spaced
 * steps it writes a full HF folder under checkpoints/step-NNNNNN/ (written
 * beside and renamed into place) and the resumable state; at the end the
 * output folder itself becomes the final HF folder. Progress goes to a
 * callback: the library never prints.
 */
#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/outdir.h"
#include "formats/formats.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "train/train.h"

void clens_train_settings_default(clens_train_settings *s)
{
    memset(s, 0, sizeof *s);
    s->arch = "qwen2";
    s->layers = 4;
    s->hidden = 128;
    s->heads = 4;
    s->kv_heads = 2;
    s->ffn = 384;
    s->window = 0;
    s->ctx = 256;
    s->tied = 0;
    s->steps = 1000;
    s->batch = 32;
    s->seq = 128;
    s->lr = 3e-3;
    s->min_lr_frac = 0.1;
    s->warmup = 50;
    s->weight_decay = 0.1;
    s->clip = 1.0;
    s->seed = 1;
    s->checkpoints = 10;
    s->threads = 0;
    s->rope_theta = 10000.0;
}

static const tr_adamw ADAM = {0.9, 0.95, 1e-8, 0};
static const double RMS_EPS = 1e-6;

/* ------------------------------------------------------------- settings */

static int file_sha(const char *path, char hex[65], clens_error *err)
{
    return clens_sha256_file_hex(path, hex, err);
}

/* sha256 of an --init folder's weights (model.safetensors, else config.json). */
static int init_sha(const char *dir, char hex[65], clens_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (access(path, R_OK) != 0) snprintf(path, sizeof path, "%s/config.json", dir);
    return file_sha(path, hex, err);
}

static json_t *settings_json(const clens_train_settings *s, const tr_shape *sh, const char *data_sha,
                             const char *tok_sha, const char *init_sha_hex)
{
    json_t *j = json_object();
    json_object_set_new(j, "arch", json_string(sh->arch == TR_OLMO3 ? "olmo3" : "qwen2"));
    json_object_set_new(j, "layers", json_integer(sh->L));
    json_object_set_new(j, "hidden", json_integer(sh->C));
    json_object_set_new(j, "heads", json_integer(sh->H));
    json_object_set_new(j, "kv_heads", json_integer(sh->Hkv));
    json_object_set_new(j, "ffn", json_integer(sh->F));
    json_object_set_new(j, "window", json_integer(sh->window));
    json_object_set_new(j, "ctx", json_integer(sh->ctx));
    json_object_set_new(j, "tied", json_integer(sh->tied));
    json_object_set_new(j, "vocab_size", json_integer(sh->V));
    json_object_set_new(j, "rope_theta", json_real(sh->theta));
    json_object_set_new(j, "rms_norm_eps", json_real(sh->eps));
    json_object_set_new(j, "steps", json_integer(s->steps));
    json_object_set_new(j, "batch", json_integer(s->batch));
    json_object_set_new(j, "seq", json_integer(s->seq));
    json_object_set_new(j, "lr", json_real(s->lr));
    json_object_set_new(j, "min_lr_frac", json_real(s->min_lr_frac));
    json_object_set_new(j, "warmup", json_integer(s->warmup));
    json_object_set_new(j, "weight_decay", json_real(s->weight_decay));
    json_object_set_new(j, "clip", json_real(s->clip));
    json_object_set_new(j, "seed", json_integer(s->seed));
    json_object_set_new(j, "checkpoints", json_integer(s->checkpoints));
    json_object_set_new(j, "adam_beta1", json_real(ADAM.beta1));
    json_object_set_new(j, "adam_beta2", json_real(ADAM.beta2));
    json_object_set_new(j, "adam_eps", json_real(ADAM.eps));
    json_object_set_new(j, "data_sha256", json_string(data_sha));
    json_object_set_new(j, "tokenizer_sha256", json_string(tok_sha));
    json_object_set_new(j, "init_sha256", init_sha_hex ? json_string(init_sha_hex) : json_null());
    return j;
}

/* Compares a previous run's settings with these; names the first difference. */
static int check_previous(const char *out, json_t *now, clens_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/training.json", out);
    char *txt;
    size_t len;
    clens_error e2;
    if (clens_read_file(path, &txt, &len, &e2)) {
        /* no training.json: a fresh folder, unless it holds a model that the
         * export would overwrite (train --out MODEL replaced a model's weights) */
        static const char *const model_files[] = {"config.json", "model.safetensors", "model.safetensors.index.json"};
        for (size_t i = 0; i < sizeof model_files / sizeof model_files[0]; i++) {
            struct stat sb;
            snprintf(path, sizeof path, "%s/%s", out, model_files[i]);
            if (lstat(path, &sb) == 0)
                return clens_err(err, CLENS_E_STATE,
                                 "%s: the folder holds %s but no clens training.json; training would overwrite that "
                                 "model: use another --out", out, model_files[i]);
        }
        return CLENS_OK; /* fresh folder */
    }
    json_error_t je;
    json_t *old = json_loadb(txt, len, 0, &je);
    free(txt);
    json_t *os = old ? json_object_get(old, "settings") : NULL;
    if (!json_is_object(os)) {
        json_decref(old);
        return clens_err(err, CLENS_E_STATE, "%s: not a clens training.json; use another --out", path);
    }
    const char *key = clens_json_first_difference(os, now);
    int rc = CLENS_OK;
    if (key) {
        char what[300];
        snprintf(what, sizeof what, "settings.%s", key);
        rc = clens_outdir_refuse(err, out, "training run", what, json_object_get(os, key), json_object_get(now, key));
    }
    json_decref(old);
    return rc;
}

/* Shape from the flags, checked against an --init folder's config. */
static int build_shape(const clens_train_settings *s, int tok_vocab, tr_shape *sh, clens_error *err)
{
    memset(sh, 0, sizeof *sh);
    if (strcmp(s->arch, "qwen2") == 0) sh->arch = TR_QWEN2;
    else if (strcmp(s->arch, "olmo3") == 0) sh->arch = TR_OLMO3;
    else return clens_err(err, CLENS_E_ARG, "--arch must be qwen2 or olmo3 (got \"%s\")", s->arch);
    sh->L = s->layers;
    sh->C = s->hidden;
    sh->H = s->heads;
    sh->Hkv = s->kv_heads;
    sh->F = s->ffn;
    sh->V = tok_vocab;
    sh->tied = s->tied;
    sh->ctx = s->ctx;
    sh->eps = RMS_EPS;
    sh->theta = s->rope_theta;
    if (s->seq > s->ctx) return clens_err(err, CLENS_E_ARG, "--seq (%d) exceeds --ctx (%d)", s->seq, s->ctx);
    if (s->layers < 1 || s->layers > TR_MAX_LAYERS)
        return clens_err(err, CLENS_E_ARG, "--layers must be in [1, %d]", TR_MAX_LAYERS);
    if (sh->arch == TR_OLMO3 && s->window > 0) {
        sh->window = s->window;
        /* Olmo3Config's rule (every 4th layer full) with the last layer full too. */
        for (int l = 0; l < sh->L; l++) sh->sliding[l] = !((l + 1) % 4 == 0 || l == sh->L - 1);
    } else if (s->window > 0) {
        return clens_err(err, CLENS_E_ARG, "--window is for --arch olmo3 only");
    }
    if (!s->init) return CLENS_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", s->init);
    model_config c;
    int rc = config_load(&c, path, err);
    if (rc) return rc;
    const char *bad = NULL;
    if (strcmp(c.arch->model_type, s->arch) != 0) bad = "model_type (--arch)";
    else if (c.n_layers != sh->L) bad = "num_hidden_layers (--layers)";
    else if (c.d_model != sh->C) bad = "hidden_size (--hidden)";
    else if (c.n_heads != sh->H) bad = "num_attention_heads (--heads)";
    else if (c.n_kv_heads != sh->Hkv) bad = "num_key_value_heads (--kv-heads)";
    else if (c.head_dim != sh->C / sh->H) bad = "head_dim";
    else if (c.d_ff != sh->F) bad = "intermediate_size (--ffn)";
    else if (c.tied != sh->tied) bad = "tie_word_embeddings (--tied)";
    else if (c.rope.type != ROPE_DEFAULT) bad = "rope_scaling (only none)";
    else if (c.rope.theta != sh->theta) bad = "rope_theta (--rope-theta)";
    else if (c.vocab < tok_vocab) bad = "vocab_size (smaller than the tokenizer's)";
    else if ((c.attn_bias != 0) != (sh->arch == TR_QWEN2)) bad = "attention_bias";
    for (int l = 0; !bad && l < sh->L; l++)
        if (c.layer_sliding[l] != sh->sliding[l] || (sh->sliding[l] && c.window != sh->window))
            bad = "layer_types / sliding_window (--window)";
    if (!bad) {
        sh->V = c.vocab;
        sh->eps = c.rms_eps;
    }
    config_free(&c);
    if (bad) return clens_err(err, CLENS_E_ARG, "%s: %s differs from the model being trained", path, bad);
    return CLENS_OK;
}

/* ------------------------------------------------------------ the run */

typedef struct run {
    const clens_train_settings *s;
    tr_plan plan;
    tr_data data;
    float *params, *grads, *m, *v;
    json_t *settings;
    char hash[65];
    char tok_dir[4096];
    int bos_id, eos_id;
    long resumed_from;
    json_t *curve; /* [[step, loss, lr], ...] at the checkpoints */
    double elapsed_s, tokens_per_s; /* of this session (since the start or the resume) */
} run;

static char *training_json_text(run *r, long step, double loss, int finished)
{
    json_t *j = json_object();
    json_object_set_new(j, "format", json_string("clens-train/1"));
    json_object_set(j, "settings", r->settings);
    json_object_set_new(j, "settings_hash", json_string(r->hash));
    json_object_set_new(j, "inputs", json_pack("{s:s,s:s,s:s?}", "data", r->s->data, "tokenizer", r->tok_dir,
                                                 "init", r->s->init));
    json_object_set_new(j, "step", json_integer(step));
    json_object_set_new(j, "finished", json_boolean(finished));
    json_object_set_new(j, "loss", json_real(loss));
    json_object_set_new(j, "n_params", json_integer((json_int_t)r->plan.n_params));
    json_object_set_new(j, "n_examples", json_integer(r->data.n_ex));
    json_object_set_new(j, "n_tokens", json_integer(r->data.n_tokens));
    json_object_set_new(j, "n_target_tokens", json_integer(r->data.n_targets));
    json_object_set_new(j, "eos_id", json_integer(r->data.eos_id));
    json_object_set_new(j, "padding", json_string("one example per row, padded to the longest row of the batch"));
    json_object_set(j, "checkpoint_curve", r->curve);
    json_object_set_new(j, "session", json_pack("{s:I,s:f,s:f}", "resumed_from", (json_int_t)r->resumed_from,
                                                "elapsed_s", r->elapsed_s, "tokens_per_s", r->tokens_per_s));
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(j);
    if (s) {
        size_t n = strlen(s);
        char *t = realloc(s, n + 2);
        if (t) { t[n] = '\n'; t[n + 1] = 0; s = t; }
    }
    return s;
}

static int rm_rf(const char *dir)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static int save_checkpoint(run *r, long step, double loss, char *out_path, size_t out_len, clens_error *err)
{
    char dir[4096], tmp[4200];
    snprintf(dir, sizeof dir, "%s/checkpoints/step-%06ld", r->s->out, step);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    snprintf(out_path, out_len, "%s", dir);
    rm_rf(tmp);
    char *tj = training_json_text(r, step, loss, step == r->s->steps);
    if (!tj) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    int rc = tr_hf_save(tmp, &r->plan, r->params, r->bos_id, r->eos_id, r->tok_dir, tj, err);
    free(tj);
    if (rc) return rc;
    rm_rf(dir);
    if (rename(tmp, dir) != 0) return clens_err(err, CLENS_E_IO, "%s: cannot rename: %s", tmp, strerror(errno));
    return CLENS_OK;
}

static int save_state(run *r, long step, double loss, clens_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/train_state.bin", r->s->out);
    int rc = tr_state_save(path, r->hash, step, r->params, r->m, r->v, r->plan.n_params, err);
    if (rc) return rc;
    /* training.json of the folder: settings + progress (the folder's model files come at the end). */
    char *tj = training_json_text(r, step, loss, 0);
    if (!tj) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/training.json", r->s->out);
    rc = clens_write_file_atomic(path, tj, strlen(tj), err);
    free(tj);
    return rc;
}

static int dump_first_step(run *r, const int32_t *ids, const uint8_t *mask, int B, int T, double loss,
                           double gnorm, double lr, clens_error *err)
{
    int rc = clens_mkdir_p(r->s->dump_dir, err);
    if (rc) return rc;
    json_t *j = json_object(), *ji = json_array(), *jm = json_array();
    for (int b = 0; b < B; b++) {
        json_t *ri = json_array(), *rm = json_array();
        for (int t = 0; t < T; t++) {
            json_array_append_new(ri, json_integer(ids[b * T + t]));
            json_array_append_new(rm, json_integer(mask[b * T + t]));
        }
        json_array_append_new(ji, ri);
        json_array_append_new(jm, rm);
    }
    json_object_set_new(j, "ids", ji);
    json_object_set_new(j, "mask", jm);
    json_object_set_new(j, "loss", json_real(loss));
    json_object_set_new(j, "grad_norm", json_real(gnorm));
    json_object_set_new(j, "lr", json_real(lr));
    char path[4096];
    snprintf(path, sizeof path, "%s/batch.json", r->s->dump_dir);
    char *txt = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(j);
    rc = clens_write_file_atomic(path, txt, strlen(txt), err);
    free(txt);
    for (int i = 0; i < r->plan.n_t && !rc; i++) {
        const tr_tensor *t = &r->plan.t[i];
        int64_t shape[2] = {t->rows, t->cols};
        snprintf(path, sizeof path, "%s/grad.%s.npy", r->s->dump_dir, t->name);
        rc = npy_write_f32(path, r->grads + t->off, shape, t->ndim, err);
    }
    return rc;
}

/* 1 if DIR/training.json records a finished run (it is written after the model files). */
static int previous_finished(const char *out)
{
    char path[4096], *txt;
    size_t len;
    clens_error e2;
    snprintf(path, sizeof path, "%s/training.json", out);
    if (clens_read_file(path, &txt, &len, &e2)) return 0;
    json_t *j = json_loadb(txt, len, 0, NULL);
    free(txt);
    int done = j && json_is_true(json_object_get(j, "finished"));
    json_decref(j);
    return done;
}

static int is_checkpoint_step(const clens_train_settings *s, long step)
{
    if (step == 0 || step == s->steps) return 1;
    for (int k = 1; k < s->checkpoints; k++)
        if (step == (long)k * s->steps / s->checkpoints) return 1;
    return 0;
}

static int train_loop(run *r, clens_train_progress_fn progress, void *user, clens_error *err)
{
    const clens_train_settings *s = r->s;
    char state_path[4096];
    snprintf(state_path, sizeof state_path, "%s/train_state.bin", s->out);
    long step = 0;
    int rc = tr_state_load(state_path, r->hash, &step, r->params, r->m, r->v, r->plan.n_params, err);
    if (rc == CLENS_E_IO) {
        step = 0;
        if (s->init) rc = tr_hf_load(s->init, &r->plan, r->params, err);
        else { tr_plan_init_params(&r->plan, r->params, (uint64_t)s->seed); rc = 0; }
        if (rc) return rc;
        memset(r->m, 0, sizeof(float) * r->plan.n_params);
        memset(r->v, 0, sizeof(float) * r->plan.n_params);
    } else if (rc) {
        return rc;
    }
    r->resumed_from = step;
    clens_train_progress pr = {0};
    pr.steps = s->steps;
    pr.resumed_from = (int)step;
    pr.n_params = (long long)r->plan.n_params;
    pr.n_examples = r->data.n_ex;
    pr.n_targets = r->data.n_targets;

    /* Already finished: training.json, the last file of the final folder, says so. */
    if (step == s->steps && previous_finished(s->out)) {
        pr.event = "finished-already";
        pr.step = (int)step;
        pr.path = s->out;
        if (progress) progress(&pr, user);
        return CLENS_OK;
    }
    pr.event = "start";
    pr.step = (int)step;
    if (progress) progress(&pr, user);

    tr_work_f32 *w = tr_work_new_f32(&r->plan, s->batch, s->seq);
    int32_t *ids = malloc(sizeof(int32_t) * s->batch * s->seq);
    uint8_t *mask = malloc((size_t)s->batch * s->seq);
    if (!w || !ids || !mask) { tr_work_free_f32(w); free(ids); free(mask); return clens_err(err, CLENS_E_NOMEM, "out of memory for the training workspace"); }
    tr_adamw opt = ADAM;
    opt.weight_decay = s->weight_decay;
    double t0 = clens_now(), last_state = t0, loss = 0;
    /* A resumed run reports the loss of its last step until it makes one. */
    size_t ci;
    json_t *ce;
    json_array_foreach(r->curve, ci, ce)
        if (json_integer_value(json_array_get(ce, 0)) == step) loss = json_number_value(json_array_get(ce, 1));
    long long tokens = 0;
    char ck[4200];
    if (step == 0) {
        /* training.json from the start: a rerun with other settings is refused from now on. */
        char path[4096], *tj = training_json_text(r, 0, 0, 0);
        if (!tj) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto out; }
        snprintf(path, sizeof path, "%s/training.json", s->out);
        rc = clens_write_file_atomic(path, tj, strlen(tj), err);
        free(tj);
        if (rc || (rc = save_checkpoint(r, 0, 0, ck, sizeof ck, err))) goto out;
    }
    while (step < s->steps) {
        int T;
        tr_data_batch(&r->data, (uint64_t)s->seed, step, s->batch, ids, mask, &T);
        long nt;
        loss = tr_loss_grad_f32(w, r->params, r->grads, ids, mask, s->batch, T, &nt);
        double gnorm = tr_grad_norm(r->grads, r->plan.n_params), lr = tr_lr_at((int)step, s->steps, s->warmup, s->lr,
                                                                                s->min_lr_frac);
        if (!isfinite(loss) || !isfinite(gnorm)) {
            rc = clens_err(err, CLENS_E_STATE, "step %ld: loss or gradient is not finite (loss %g, norm %g); "
                                               "lower --lr", step, loss, gnorm);
            goto out;
        }
        if (s->dump_dir && step == 0 && (rc = dump_first_step(r, ids, mask, s->batch, T, loss, gnorm, lr, err))) goto out;
        tr_clip(r->grads, r->plan.n_params, gnorm, s->clip);
        tr_adamw_step(&r->plan, &opt, r->params, r->grads, r->m, r->v, step + 1, lr);
        step++;
        for (int b = 0; b < s->batch; b++)
            for (int t = 0; t < T; t++) tokens += t == 0 || ids[b * T + t] != r->data.pad_id || mask[b * T + t];
        double now = clens_now(), el = now - t0;
        pr.event = "step";
        pr.step = (int)step;
        pr.loss = loss;
        pr.lr = lr;
        pr.grad_norm = gnorm;
        pr.elapsed_s = el;
        pr.tokens_per_s = el > 0 ? tokens / el : 0;
        r->elapsed_s = el;
        r->tokens_per_s = pr.tokens_per_s;
        pr.eta_s = el / (double)(step - r->resumed_from) * (double)(s->steps - step);
        pr.path = NULL;
        if (progress) progress(&pr, user);
        if (is_checkpoint_step(s, step)) {
            json_array_append_new(r->curve, json_pack("[I,f,f]", (json_int_t)step, loss, lr));
            if ((rc = save_checkpoint(r, step, loss, ck, sizeof ck, err))) goto out;
            if ((rc = save_state(r, step, loss, err))) goto out;
            last_state = clens_now();
            pr.event = "checkpoint";
            pr.path = ck;
            if (progress) progress(&pr, user);
        } else if (clens_now() - last_state > 60) {
            /* Long stretches between checkpoints still resume close to where they stopped. */
            if ((rc = save_state(r, step, loss, err))) goto out;
            last_state = clens_now();
        }
    }
    /* The final folder: the output folder itself. */
    {
        char *tj = training_json_text(r, step, loss, 1);
        if (!tj) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto out; }
        rc = tr_hf_save(s->out, &r->plan, r->params, r->bos_id, r->eos_id, r->tok_dir, tj, err);
        free(tj);
        if (rc) goto out;
    }
    pr.event = "done";
    pr.path = s->out;
    pr.loss = loss;
    pr.elapsed_s = clens_now() - t0;
    if (progress) progress(&pr, user);
out:
    tr_work_free_f32(w);
    free(ids);
    free(mask);
    return rc;
}

int clens_train(const clens_train_settings *s, clens_train_progress_fn progress, void *user, clens_error *err)
{
    if (!s->data || !s->tokenizer || !s->out)
        return clens_err(err, CLENS_E_ARG, "train: --data, --tokenizer and --out are required");
    if (s->steps < 0 || s->batch < 1 || s->seq < 2 || s->warmup < 0 || s->checkpoints < 1 || s->lr <= 0 ||
        s->clip < 0 || s->min_lr_frac < 0 || s->min_lr_frac > 1 || s->weight_decay < 0 || s->rope_theta <= 0)
        return clens_err(err, CLENS_E_ARG, "train: a numeric setting is out of range (see clens train --help)");
    /* OpenMP threads split the work; every cblas call runs on one thread. */
    kern_set_threads(s->threads > 0 ? s->threads : 0);
    openblas_set_num_threads(1);
    run r;
    memset(&r, 0, sizeof r);
    r.s = s;
    clens_tokenizer *tok = NULL;
    int rc = clens_tokenizer_open(&tok, s->tokenizer, err);
    if (rc) return rc;
    clens_tokenizer_info ti;
    clens_tokenizer_get_info(tok, &ti);
    snprintf(r.tok_dir, sizeof r.tok_dir, "%s", ti.dir ? ti.dir : ".");
    r.bos_id = ti.bos_id;
    char data_sha[65], tok_sha[65], init_hex[65];
    tr_shape sh;
    if ((rc = file_sha(s->data, data_sha, err)) || (rc = file_sha(ti.path, tok_sha, err))) goto done;
    if (s->init && (rc = init_sha(s->init, init_hex, err))) goto done;
    if ((rc = tr_data_load(&r.data, s->data, tok, s->seq, err))) goto done;
    r.eos_id = r.data.eos_id;
    if ((rc = build_shape(s, clens_tokenizer_vocab_size(tok), &sh, err))) goto done;
    if ((rc = tr_plan_init(&r.plan, &sh, err))) goto done;
    r.settings = settings_json(s, &r.plan.s, data_sha, tok_sha, s->init ? init_hex : NULL);
    {
        char *c = json_dumps(r.settings, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
        if (!c) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        clens_sha256_hex(c, strlen(c), r.hash);
        free(c);
    }
    if ((rc = check_previous(s->out, r.settings, err))) goto done;
    if ((rc = clens_mkdir_p(s->out, err))) goto done;
    r.curve = json_array();
    {
        /* The checkpoint curve survives a resume: take it from training.json. */
        char path[4096], *txt;
        size_t len;
        clens_error e2;
        snprintf(path, sizeof path, "%s/training.json", s->out);
        if (!clens_read_file(path, &txt, &len, &e2)) {
            json_t *old = json_loadb(txt, len, 0, NULL);
            json_t *cv = old ? json_object_get(old, "checkpoint_curve") : NULL;
            if (json_is_array(cv)) json_array_extend(r.curve, cv);
            json_decref(old);
            free(txt);
        }
    }
    size_t n = r.plan.n_params;
    r.params = malloc(sizeof(float) * n);
    r.grads = malloc(sizeof(float) * n);
    r.m = malloc(sizeof(float) * n);
    r.v = malloc(sizeof(float) * n);
    if (!r.params || !r.grads || !r.m || !r.v) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    rc = train_loop(&r, progress, user, err);
done:
    free(r.params);
    free(r.grads);
    free(r.m);
    free(r.v);
    json_decref(r.settings);
    json_decref(r.curve);
    tr_plan_free(&r.plan);
    tr_data_free(&r.data);
    clens_tokenizer_free(tok);
    return rc;
}
