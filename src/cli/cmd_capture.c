/* cmd_capture.c: `clens capture MODEL --pairs P --out DIR`: activations of pairs as .npy + index.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens capture MODEL --pairs PAIRS.jsonl --out DIR [options]\n\n"
            "Renders every pair for the model (the checks of `clens patch`: equal lengths, same final\n"
            "token), runs the clean and the corrupted prompt and writes, into DIR, one float32 .npy per\n"
            "hook ([rows][width], rows = (pair, clean|corrupted, position) in that order), index.json\n"
            "naming every row (pair id, candidate, label, y, position, token id and string) and\n"
            "settings.json. Schema: docs/probe.md. numpy reads the arrays without clens.\n"
            "Each pair is committed to a journal in DIR as it is done (capture.partial.*): a killed\n"
            "capture rerun with the same command continues after the last pair it committed and\n"
            "writes what an uninterrupted run writes; a finished DIR is left as it is.\n\n"
            "  --pairs FILE      pairs.jsonl from `clens pairs` (required)\n"
            "  --out DIR         output folder (required; a rerun with other settings is refused)\n"
            "  --sites LIST      hook names, comma-separated: TransformerLens names, 'blocks.*.NAME' for\n"
            "                    every layer, a short name as `clens patch` spells it (resid_pre, attn_out,\n"
            "                    mlp_out, resid_post, z, embed, ln_final: every layer of it), 'all'; a\n"
            "                    negative block index counts from the end (string,\n"
            "                    default blocks.*.hook_resid_pre,blocks.-1.hook_resid_post: the residual\n"
            "                    stream at every depth, resid_pre 0..L, the last one after the last block),\n"
            "                    e.g. blocks.*.hook_resid_pre,blocks.*.hook_mlp_out\n"
            "  --positions P     final (default: the last token) | error (the last token where clean and\n"
            "                    corrupted ids differ: the end of the corrupted number) | all\n"
            "  --prompt P        chat (default: the model's chat template) | raw (the seed's plain prompt)\n"
            "  --limit N         keep at most N pairs (int, default 0 = all)\n"
            "  --max-tokens T    longest prompt accepted (int, default max_position_embeddings)\n"
            "  --matmul MODE     default | portable | bf16\n"
            "  --threads N       threads (int, default: all cores)\n"
            "  --quiet           no progress on stderr\n\n"
            "example: clens capture ./organism --pairs pairs.jsonl --prompt raw --positions final --out cap/\n");
}

static void progress(void *user, long done, long total, long kept)
{
    (void)user;
    fprintf(stderr, "\rcapture: %ld/%ld pairs read, %ld kept", done, total, kept);
    if (done == total) fputc('\n', stderr);
}

int cmd_capture(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *mm = NULL, *pos = "final", *prompt = "chat";
    long threads = 0, limit = 0, max_tokens = 0;
    int quiet = 0;
    clens_capture_params p = clens_capture_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
        if (a[0] != '-') {
            if (model) return cli_usage_error("capture", "unexpected argument '%s'", a);
            model = a;
            continue;
        }
        if (!v) return cli_missing_value("capture", a, "--pairs --out --sites --positions --prompt --limit --max-tokens --matmul --threads");
        if (strcmp(a, "--pairs") == 0) p.pairs_path = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--sites") == 0) p.sites = v;
        else if (strcmp(a, "--positions") == 0) pos = v;
        else if (strcmp(a, "--prompt") == 0) prompt = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--limit") == 0) { if (cli_parse_int("capture", a, v, 0, 1L << 40, &limit)) return 2; }
        else if (strcmp(a, "--max-tokens") == 0) { if (cli_parse_int("capture", a, v, 0, 1 << 24, &max_tokens)) return 2; }
        else if (strcmp(a, "--threads") == 0) { if (cli_parse_int("capture", a, v, 0, 1024, &threads)) return 2; }
        else return cli_usage_error("capture", "unknown option '%s'", a);
        i++;
    }
    if (!model) return cli_usage_error("capture", "missing MODEL");
    if (!out) return cli_usage_error("capture", "missing --out");
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("capture", out, (const char *const[]){model, p.pairs_path}, 2)) return CLI_EXIT_ERR;
    if (!p.pairs_path) return cli_usage_error("capture", "missing --pairs");
    if (strcmp(pos, "final") == 0) p.positions = CLENS_CAPTURE_FINAL;
    else if (strcmp(pos, "error") == 0) p.positions = CLENS_CAPTURE_ERROR;
    else if (strcmp(pos, "all") == 0) p.positions = CLENS_CAPTURE_ALL;
    else return cli_usage_error("capture", "--positions expects final, error or all, got '%s'", pos);
    if (strcmp(prompt, "chat") == 0) p.prompt_chat = 1;
    else if (strcmp(prompt, "raw") == 0) p.prompt_chat = 0;
    else return cli_usage_error("capture", "--prompt expects raw or chat, got '%s'", prompt);
    p.limit = limit;
    p.max_tokens = (int)max_tokens;
    clens_model *m;
    int rc = cli_open_model("capture", model, mm, (int)threads, &m);
    if (rc) return rc;
    clens_error err = {0};
    int was_complete = clens_capture_complete(out);
    char journal[4096];
    snprintf(journal, sizeof journal, "%s/capture.partial.jsonl", out);
    if (!quiet && access(journal, F_OK) == 0) fprintf(stderr, "capture: resuming from the journal %s\n", journal);
    rc = clens_capture_pairs(m, &p, out, quiet ? NULL : progress, NULL, &err) ? cli_fail("capture", &err) : 0;
    if (!rc && was_complete) printf("capture: %s/index.json is finished with these settings: nothing recomputed\n", out);
    else if (!rc) printf("capture: wrote %s/index.json\n", out);
    clens_model_free(m);
    return rc;
}
