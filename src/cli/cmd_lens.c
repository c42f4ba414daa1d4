/* cmd_lens.c: `clens lens MODEL (--text T | --pairs P) --out DIR`: the logit lens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens lens MODEL (--text T | --pairs PAIRS.jsonl) --out DIR [options]\n\n"
            "The logit lens: the residual stream before every block (and after the last) through the\n"
            "model's final norm and unembedding, at the chosen positions: top-k tokens with\n"
            "probabilities and the log probability mass of the correction tokens (the set of `clens\n"
            "patch`'s logprob_mass). Writes lens.json, lens.md (table) and lens.svg (heat map).\n\n"
            "  --text T          a text (encoded with the tokenizer's special tokens)\n"
            "  --pairs FILE      pairs.jsonl: clean and corrupted of the first --limit usable pairs\n"
            "  --out DIR         output folder (required)\n"
            "  --positions P     final (default) | all (text) | error (pairs: the corrupted token)\n"
            "  --prompt P        pairs: chat (default) | raw\n"
            "  --top-k K         tokens per cell (int 1..64, default 5)\n"
            "  --limit N         pairs used (int, default 4)\n"
            "  --matmul MODE     default | portable | bf16\n"
            "  --threads N       threads (int, default: all cores)\n\n"
            "example: clens lens ./organism --pairs pairs.jsonl --prompt raw --limit 1 --out lens/\n");
}

int cmd_lens(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *mm = NULL, *text = NULL, *pairs = NULL, *pos = "final", *prompt = "chat";
    long threads = 0, x;
    clens_lens_params p = clens_lens_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (a[0] != '-') {
            if (model) return cli_usage_error("lens", "unexpected argument '%s'", a);
            model = a;
            continue;
        }
        if (!v) return cli_missing_value("lens", a, "--text --pairs --out --positions --prompt --top-k --limit --matmul --threads");
        if (strcmp(a, "--text") == 0) text = v;
        else if (strcmp(a, "--pairs") == 0) pairs = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--positions") == 0) pos = v;
        else if (strcmp(a, "--prompt") == 0) prompt = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--top-k") == 0) { if (cli_parse_int("lens", a, v, 1, 64, &x)) return 2; p.top_k = (int)x; }
        else if (strcmp(a, "--limit") == 0) { if (cli_parse_int("lens", a, v, 1, 1000000, &x)) return 2; p.limit = x; }
        else if (strcmp(a, "--threads") == 0) { if (cli_parse_int("lens", a, v, 0, 1024, &threads)) return 2; }
        else return cli_usage_error("lens", "unknown option '%s'", a);
        i++;
    }
    if (!model) return cli_usage_error("lens", "missing MODEL");
    if (!out) return cli_usage_error("lens", "missing --out");
    /* outputs: never over an input, a device, a FIFO or a link (src/base/outpath.c) */
    if (cli_check_out_dir("lens", out, (const char *const[]){model, pairs}, 2)) return CLI_EXIT_ERR;
    if (!text == !pairs) return cli_usage_error("lens", "give exactly one of --text and --pairs");
    if (strcmp(pos, "final") == 0) p.positions = CLENS_CAPTURE_FINAL;
    else if (strcmp(pos, "all") == 0 && text) p.positions = CLENS_CAPTURE_ALL;
    else if (strcmp(pos, "error") == 0 && pairs) p.positions = CLENS_CAPTURE_ERROR;
    else return cli_usage_error("lens", "--positions expects final, all (--text) or error (--pairs), got '%s'", pos);
    if (strcmp(prompt, "chat") == 0) p.prompt_chat = 1;
    else if (strcmp(prompt, "raw") == 0) p.prompt_chat = 0;
    else return cli_usage_error("lens", "--prompt expects raw or chat, got '%s'", prompt);
    clens_model *m;
    int rc = cli_open_model("lens", model, mm, (int)threads, &m);
    if (rc) return rc;
    clens_error err = {0};
    char *md = NULL;
    rc = clens_lens_write(m, &p, text, pairs, out, &md, &err) ? cli_fail("lens", &err) : 0;
    if (!rc) fputs(md, stdout);
    free(md);
    clens_model_free(m);
    return rc;
}
