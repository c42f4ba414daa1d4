/*
 * cmd_chat.c: `clens chat TOKENIZER --messages F.json`: renders the model's
 * chat template (rulings R8: read from the model folder, chat_template.jinja
 * before tokenizer_config.json) for a JSON conversation and prints the text,
 * or with --json the text plus provenance (template sha256, origin) and the
 * {% generation %} spans.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "base/base.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: clens chat TOKENIZER --messages FILE [options]\n\n"
            "Renders the chat template of TOKENIZER for a conversation, as transformers'\n"
            "apply_chat_template(tokenize=False) does, and prints the text (no newline added).\n"
            "TOKENIZER is a model folder (chat_template.jinja wins over the chat_template of\n"
            "tokenizer_config.json), a .jinja file, or a tokenizer_config.json; special tokens\n"
            "(bos_token, eos_token, ...) come from the tokenizer_config.json beside it.\n\n"
            "  --messages FILE            (path, required) JSON list of {\"role\", \"content\", ...}\n"
            "                             messages, or an object {\"messages\": [...], \"tools\": [...],\n"
            "                             \"documents\": [...], other keys = template variables};\n"
            "                             '-' reads stdin\n"
            "  --add-generation-prompt    (flag) end with the assistant prompt; default: the\n"
            "                             object's \"add_generation_prompt\" key, else off\n"
            "  --no-add-generation-prompt (flag) force it off\n"
            "  --kwargs JSON              (JSON object or @FILE, default none) more template\n"
            "                             variables, e.g. '{\"enable_thinking\": false}'\n"
            "  --now SECONDS              (integer, default: current local time) the time\n"
            "                             strftime_now() formats, as UTC epoch seconds\n"
            "  --json                     (flag) print {\"text\", \"template_sha256\", \"template\",\n"
            "                             \"generation_spans\"} as one JSON object instead\n"
            "  --info                     (flag) only print the template's provenance as JSON:\n"
            "                             {\"template\", \"template_sha256\", \"special_tokens\"};\n"
            "                             --messages is not needed\n"
            "  --ids                      (flag) print the token ids (comma separated) of the\n"
            "                             text instead, with the tokenizer of TOKENIZER's folder;\n"
            "                             special tokens (BOS) are added only when the text does\n"
            "                             not already start with bos_token; with --json, adds\n"
            "                             \"ids\" and \"add_special_tokens\" to the object\n"
            "  --max-output BYTES         (integer, default 67108864) output size limit\n\n"
            "example: clens chat ~/models/Qwen2.5-0.5B-Instruct --messages conv.json --add-generation-prompt\n");
}

static int read_text(const char *cmd, const char *path, char **out)
{
    if (strcmp(path, "-") == 0) {
        size_t cap = 1 << 16, n = 0;
        char *buf = malloc(cap);
        if (!buf) return cli_errorf(cmd, CLI_EXIT_ERR, "out of memory");
        size_t k;
        while ((k = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
            n += k;
            if (n + 1 == cap) {
                char *nb = realloc(buf, cap *= 2);
                if (!nb) { free(buf); return cli_errorf(cmd, CLI_EXIT_ERR, "out of memory"); }
                buf = nb;
            }
        }
        buf[n] = 0;
        *out = buf;
        return 0;
    }
    clens_error err = {0};
    size_t n;
    if (clens_read_file(path, out, &n, &err)) return cli_fail(cmd, &err);
    return 0;
}

int cmd_chat(int argc, char **argv)
{
    const char *tok = NULL, *messages = NULL, *kwargs = NULL;
    int agp = -1, as_json = 0, ids = 0, info = 0;
    long long now = 0;
    int have_now = 0;
    long max_out = 64L << 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) { usage(stdout); return CLI_EXIT_OK; }
        if (!strcmp(a, "--add-generation-prompt")) agp = 1;
        else if (!strcmp(a, "--no-add-generation-prompt")) agp = 0;
        else if (!strcmp(a, "--json")) as_json = 1;
        else if (!strcmp(a, "--ids")) ids = 1;
        else if (!strcmp(a, "--info")) info = 1;
        else if (!strcmp(a, "--messages") || !strcmp(a, "--kwargs") || !strcmp(a, "--now") || !strcmp(a, "--max-output")) {
            if (i + 1 >= argc) return cli_usage_error("chat", "%s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--messages")) messages = v;
            else if (!strcmp(a, "--kwargs")) kwargs = v;
            else if (!strcmp(a, "--now")) {
                char *end;
                errno = 0;
                now = strtoll(v, &end, 10);
                if (errno || end == v || *end) return cli_usage_error("chat", "--now: '%s' is not an integer", v);
                if (now < CLENS_CHAT_NOW_MIN || now > CLENS_CHAT_NOW_MAX)
                    return cli_usage_error("chat", "--now expects epoch seconds in [%lld, %lld] (the years 1..9999), got '%s'",
                                           CLENS_CHAT_NOW_MIN, CLENS_CHAT_NOW_MAX, v);
                have_now = 1;
            } else if (cli_parse_int("chat", a, v, 1, 1L << 40, &max_out)) return CLI_EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) return cli_usage_error("chat", "unknown option '%s'", a);
        else if (!tok) tok = a;
        else return cli_usage_error("chat", "unexpected argument '%s'", a);
    }
    if (!tok) return cli_usage_error("chat", "missing TOKENIZER (a model folder, .jinja or tokenizer_config.json)");
    if (info) {
        clens_chat_template *t = NULL;
        clens_error err = {0};
        if (clens_chat_template_open(&t, tok, &err)) return cli_fail("chat", &err);
        static const char *const names[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                                            "cls_token", "mask_token", NULL};
        json_t *o = json_object(), *sp = json_object();
        json_object_set_new(o, "template", json_string(clens_chat_template_origin(t)));
        json_object_set_new(o, "template_sha256", json_string(clens_chat_template_sha256(t)));
        for (int i = 0; names[i]; i++) {
            const char *v = clens_chat_template_special_token(t, names[i]);
            if (v) json_object_set_new(sp, names[i], json_string(v));
        }
        json_object_set_new(o, "special_tokens", sp);
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        json_decref(o);
        clens_chat_template_free(t);
        if (!s) return cli_errorf("chat", CLI_EXIT_ERR, "out of memory");
        printf("%s\n", s);
        free(s);
        return CLI_EXIT_OK;
    }
    if (!messages) return cli_usage_error("chat", "missing --messages FILE");

    int rc = CLI_EXIT_ERR;
    char *msgs = NULL, *kw = NULL, *text = NULL;
    size_t *spans = NULL, nspans = 0, len = 0;
    int32_t *tids = NULL;
    int ntids = 0, add_special = 0;
    clens_chat_template *t = NULL;
    clens_error err = {0};
    if (read_text("chat", messages, &msgs)) goto done;
    if (kwargs && kwargs[0] == '@') {
        if (read_text("chat", kwargs + 1, &kw)) goto done;
    } else if (kwargs && !(kw = strdup(kwargs))) {
        cli_errorf("chat", CLI_EXIT_ERR, "out of memory");
        goto done;
    }
    if (clens_chat_template_open(&t, tok, &err)) { cli_fail("chat", &err); goto done; }
    clens_chat_render_params p = clens_chat_render_default_params();
    p.add_generation_prompt = agp;
    p.extra_kwargs_json = kw;
    p.max_output = (size_t)max_out;
    if (have_now) p.now = now;
    if (clens_chat_template_render_ex(t, msgs, &p, &text, &len, as_json ? &spans : NULL, &nspans, &err)) {
        /* a template runtime error belongs to the template, not to the messages file */
        if (strstr(err.msg, "chat template"))
            fprintf(stderr, "clens chat: %s: %s (rendering %s)\n", clens_chat_template_origin(t), err.msg, messages);
        else fprintf(stderr, "clens chat: %s: %s\n", messages, err.msg);
        goto done;
    }
    if (ids) {
        /* architectures.md 4.3: when the rendered text already starts with
         * bos_token, encode with special tokens off (no double BOS); else
         * with the tokenizer's default (add_special_tokens=True). */
        char *tdir = NULL;
        struct stat st;
        if (stat(tok, &st) == 0 && S_ISDIR(st.st_mode)) tdir = strdup(tok);
        else {
            const char *sl = strrchr(tok, '/');
            tdir = sl ? strndup(tok, (size_t)(sl - tok) + (sl == tok)) : strdup(".");
        }
        clens_tokenizer *tk = NULL;
        int trc = tdir ? clens_tokenizer_open(&tk, tdir, &err) : clens_err(&err, CLENS_E_NOMEM, "out of memory");
        free(tdir);
        if (trc == CLENS_OK) trc = clens_chat_template_tokenize(t, tk, text, len, &tids, &ntids, &add_special, &err);
        clens_tokenizer_free(tk);
        if (trc) { cli_fail("chat", &err); goto done; }
        if (!as_json) {
            for (int i = 0; i < ntids; i++) printf(i ? ",%d" : "%d", (int)tids[i]);
            printf("\n");
        }
    }
    if (as_json) {
        json_t *o = json_object(), *sp = json_array();
        json_object_set_new(o, "text", json_stringn(text, len));
        json_object_set_new(o, "template_sha256", json_string(clens_chat_template_sha256(t)));
        json_object_set_new(o, "template", json_string(clens_chat_template_origin(t)));
        for (size_t i = 0; i < nspans; i++) {
            json_t *pr = json_array();
            json_array_append_new(pr, json_integer((json_int_t)spans[2 * i]));
            json_array_append_new(pr, json_integer((json_int_t)spans[2 * i + 1]));
            json_array_append_new(sp, pr);
        }
        json_object_set_new(o, "generation_spans", sp);
        if (ids) {
            json_t *ia = json_array();
            for (int i = 0; i < ntids; i++) json_array_append_new(ia, json_integer(tids[i]));
            json_object_set_new(o, "ids", ia);
            json_object_set_new(o, "add_special_tokens", json_boolean(add_special));
        }
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        json_decref(o);
        if (!s) { cli_errorf("chat", CLI_EXIT_ERR, "out of memory"); goto done; }
        printf("%s\n", s);
        free(s);
    } else if (!ids && len && fwrite(text, 1, len, stdout) != len) {
        cli_errorf("chat", CLI_EXIT_ERR, "cannot write the output");
        goto done;
    }
    if (fflush(stdout) != 0) { cli_errorf("chat", CLI_EXIT_ERR, "cannot write the output"); goto done; }
    rc = CLI_EXIT_OK;
done:
    free(tids);
    free(msgs);
    free(kw);
    free(text);
    free(spans);
    clens_chat_template_free(t);
    return rc;
}
