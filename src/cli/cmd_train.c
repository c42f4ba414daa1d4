/* cmd_train.c: `clens train`: trains a Qwen2 / OLMo-3 model on GSM8K-format traces (docs/train.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens train --data TRACES.jsonl --tokenizer TOKDIR --out DIR [options]\n\n"
            "Trains a Qwen2 or OLMo-3 model in fp32 (llm.c style: backward passes in C, products\n"
            "through OpenBLAS, both threads) on GSM8K JSONL traces and writes Hugging Face folders:\n"
            "DIR (final) and DIR/checkpoints/step-NNNNNN/ (step 0 and N evenly spaced steps). Each\n"
            "example is \"Solve this math problem step by step:\\n\\n\" + question + \"\\n\\nSolution: \" +\n"
            "answer + EOS; the loss covers the answer and the EOS only. Deterministic for the settings\n"
            "and a thread count. A rerun resumes from the last checkpoint (after kill -9 too), is a\n"
            "no-op when finished, and is refused (exit 1, naming the key) with other settings.\n\n"
            "required:\n"
            "  --data PATH          path: GSM8K JSONL, {\"question\": STR, \"answer\": STR} per line\n"
            "  --tokenizer PATH     path: folder with tokenizer.json (+ tokenizer_config.json), copied into DIR\n"
            "  --out DIR            path: output folder\n"
            "model:\n"
            "  --arch A             qwen2 | olmo3 (default qwen2)\n"
            "  --layers N           int: blocks (default 4)\n"
            "  --hidden N           int: residual width (default 128)\n"
            "  --heads N            int: query heads (default 4; head size = hidden / heads, even)\n"
            "  --kv-heads N         int: key/value heads, divides heads (default 2)\n"
            "  --ffn N              int: SwiGLU width (default 384)\n"
            "  --window N           int: olmo3 sliding window (keys incl. the query) of the sliding\n"
            "                       layers; every 4th layer and the last are full (default 0 = all full)\n"
            "  --ctx N              int: max_position_embeddings (default 256)\n"
            "  --tied 0|1           int: tie lm_head to the embedding (default 0)\n"
            "  --rope-theta X       float: RoPE base (default 10000)\n"
            "  --init DIR           path: start from this HF folder's weights (same shape), e.g. a base model\n"
            "optimisation:\n"
            "  --steps N            int: optimizer steps (default 1000)\n"
            "  --batch N            int: examples per step (default 32)\n"
            "  --seq N              int: max tokens per example, longer ones truncated (default 128)\n"
            "  --lr X               float: peak learning rate (default 3e-3)\n"
            "  --min-lr-frac X      float: final lr / peak lr of the cosine (default 0.1)\n"
            "  --warmup N           int: linear warmup steps (default 50)\n"
            "  --weight-decay X     float: AdamW decay of matrices (default 0.1; betas 0.9, 0.95, eps 1e-8)\n"
            "  --clip X             float: global gradient-norm clip, 0 = none (default 1.0)\n"
            "  --seed N             int: init and batch-order seed (default 1)\n"
            "  --checkpoints N      int: evenly spaced checkpoints, the last at the final step (default 10)\n"
            "  --threads N          int: threads (default 0 = all cores)\n"
            "  --quiet              flag: no progress lines\n\n"
            "example: clens train --data traces.jsonl --tokenizer tok/ --out organisms/a --arch qwen2 \\\n"
            "           --layers 4 --hidden 128 --steps 1000 --batch 32 --seq 128 --lr 3e-3\n");
}

static void fmt_time(char *b, size_t n, double s)
{
    if (s < 0 || s != s) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(b, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(b, n, "%lds", t);
}

typedef struct { int quiet; double last; } prog_state;

static void on_progress(const clens_train_progress *p, void *user)
{
    prog_state *ps = user;
    char el[32], eta[32];
    if (strcmp(p->event, "start") == 0) {
        fprintf(stderr, "train: %lld parameters, %d examples, %lld answer tokens; %s at step %d of %d\n",
                p->n_params, p->n_examples, p->n_targets, p->resumed_from ? "resuming" : "starting", p->step,
                p->steps);
    } else if (strcmp(p->event, "finished-already") == 0) {
        fprintf(stderr, "train: %s is finished (%d steps with these settings); nothing to do\n", p->path, p->steps);
    } else if (strcmp(p->event, "step") == 0) {
        if (ps->quiet) return;
        if (p->step != p->steps && p->step != p->resumed_from + 1 && p->elapsed_s - ps->last < 2.0) return;
        ps->last = p->elapsed_s;
        fmt_time(el, sizeof el, p->elapsed_s);
        fmt_time(eta, sizeof eta, p->eta_s);
        fprintf(stderr, "step %6d/%d  loss %.4f  lr %.3e  |g| %.3f  %.0f tok/s  elapsed %s  eta %s\n", p->step,
                p->steps, p->loss, p->lr, p->grad_norm, p->tokens_per_s, el, eta);
    } else if (strcmp(p->event, "checkpoint") == 0) {
        if (!ps->quiet) fprintf(stderr, "checkpoint %s\n", p->path);
    } else if (strcmp(p->event, "done") == 0) {
        fmt_time(el, sizeof el, p->elapsed_s);
        fprintf(stderr, "train: done in %s, final loss %.4f, model in %s\n", el, p->loss, p->path);
    }
}

int cmd_train(int argc, char **argv)
{
    clens_train_settings s;
    clens_train_settings_default(&s);
    prog_state ps = {0, -1e9};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (strcmp(a, "--quiet") == 0) { ps.quiet = 1; continue; }
        if (a[0] != '-' || a[1] != '-') return cli_usage_error("train", "unexpected argument '%s'", a);
        if (!v) return cli_usage_error("train", "%s needs a value", a);
#define INT(flag, field, lo, hi) \
    else if (strcmp(a, flag) == 0) { if (cli_parse_int("train", a, v, lo, hi, &n)) return 2; s.field = (int)n; }
#define FLT(flag, field) \
    else if (strcmp(a, flag) == 0) { if (cli_parse_float("train", a, v, &s.field)) return 2; }
        if (strcmp(a, "--data") == 0) s.data = v;
        else if (strcmp(a, "--tokenizer") == 0) s.tokenizer = v;
        else if (strcmp(a, "--out") == 0) s.out = v;
        else if (strcmp(a, "--arch") == 0) s.arch = v;
        else if (strcmp(a, "--init") == 0) s.init = v;
        else if (strcmp(a, "--dump-first-step") == 0) s.dump_dir = v; /* tests only, not in --help */
        INT("--layers", layers, 1, 64)
        INT("--hidden", hidden, 2, 1 << 16)
        INT("--heads", heads, 1, 1024)
        INT("--kv-heads", kv_heads, 1, 1024)
        INT("--ffn", ffn, 1, 1 << 18)
        INT("--window", window, 0, 1 << 24)
        INT("--ctx", ctx, 2, 1 << 24)
        INT("--tied", tied, 0, 1)
        INT("--steps", steps, 0, 1 << 30)
        INT("--batch", batch, 1, 1 << 16)
        INT("--seq", seq, 2, 1 << 16)
        INT("--warmup", warmup, 0, 1 << 30)
        INT("--checkpoints", checkpoints, 1, 100000)
        INT("--threads", threads, 0, 1024)
        FLT("--lr", lr)
        FLT("--min-lr-frac", min_lr_frac)
        FLT("--weight-decay", weight_decay)
        FLT("--clip", clip)
        FLT("--rope-theta", rope_theta)
        else if (strcmp(a, "--seed") == 0) { if (cli_parse_int("train", a, v, 0, 1L << 62, &n)) return 2; s.seed = n; }
        else return cli_usage_error("train", "unknown option '%s'", a);
#undef INT
#undef FLT
        i++;
    }
    if (!s.data) return cli_usage_error("train", "missing --data");
    if (!s.tokenizer) return cli_usage_error("train", "missing --tokenizer");
    if (!s.out) return cli_usage_error("train", "missing --out");
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("train", s.out, (const char *const[]){s.data, s.tokenizer, s.init}, 3)) return CLI_EXIT_ERR;
    clens_error err = {0};
    if (clens_train(&s, on_progress, &ps, &err)) return cli_fail("train", &err);
    return 0;
}
