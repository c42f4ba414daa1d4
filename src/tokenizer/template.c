/*
 * template.c: the public chat-template API (include/clens.h, "chat
 * templates"): loading a template from a model folder as transformers does
 * (chat_template.jinja first, else tokenizer_config.json's chat_template,
 * rulings R8), its provenance (sha256 of the source), the special-token
 * variables, and rendering a JSON conversation with the interpreter in
 * template_{lex,parse,eval,builtins,value}.c.
 */
#include "template_internal.h"
#include "base/infile.h"
#include "base/path.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct clens_chat_template {
    tpl_arena ar;          /* AST and strings */
    tnode *root;
    char *source;          /* malloc'd copy, NUL-terminated */
    size_t source_len;
    char sha[65];
    char *origin;
    json_t *special;       /* object: name -> string (defined special tokens only) */
};

static const char *const SPECIAL_NAMES[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                                            "cls_token", "mask_token", "additional_special_tokens", NULL};

/* A token value of tokenizer_config.json as a string: "x" or {"content": "x"}. */
static json_t *token_string(json_t *v)
{
    if (json_is_string(v)) return json_incref(v);
    if (json_is_object(v)) {
        json_t *c = json_object_get(v, "content");
        if (json_is_string(c)) return json_incref(c);
    }
    return NULL;
}

/* special_tokens_map as transformers builds it: attributes that are set and truthy */
static json_t *special_tokens_from(json_t *cfg)
{
    json_t *out = json_object();
    if (!out || !json_is_object(cfg)) return out;
    for (int i = 0; SPECIAL_NAMES[i]; i++) {
        json_t *v = json_object_get(cfg, SPECIAL_NAMES[i]);
        if (!v) continue;
        if (json_is_array(v)) {
            json_t *arr = json_array();
            size_t k;
            json_t *x;
            json_array_foreach(v, k, x) {
                json_t *s = token_string(x);
                if (s) json_array_append_new(arr, s);
            }
            if (json_array_size(arr)) json_object_set_new(out, SPECIAL_NAMES[i], arr);
            else json_decref(arr);
            continue;
        }
        json_t *s = token_string(v);
        if (s && json_string_length(s) > 0) json_object_set_new(out, SPECIAL_NAMES[i], s);
        else json_decref(s);
    }
    return out;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = (size_t)(slash - path);
    if (n == 0) return strdup("/");
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int parse_guarded(tpl_arena *ar, const char *src, size_t n, tnode **root)
{
    jmp_buf jb;
    ar->jb = &jb;
    if (setjmp(jb)) return 1;
    *root = tpl_parse(ar, src, n);
    ar->jb = NULL;
    return 0;
}

/* Parses t->source into t->root. */
static int build(clens_chat_template *t, clens_error *err)
{
    long bad = tpl_utf8_check(t->source, t->source_len);
    if (bad >= 0)
        return clens_err(err, CLENS_E_FORMAT, "%s: chat template is not valid UTF-8 at byte %ld", t->origin, bad);
    clens_sha256_hex(t->source, t->source_len, t->sha);
    clens_error local;
    clens_error *e = err ? err : &local;
    memset(e, 0, sizeof *e);
    tpl_arena_init(&t->ar, 256u << 20, NULL, e);
    if (parse_guarded(&t->ar, t->source, t->source_len, &t->root)) {
        char msg[sizeof e->msg + 600];
        snprintf(msg, sizeof msg, "%.500s: %s", t->origin, e->msg);
        memcpy(e->msg, msg, sizeof e->msg - 1);
        e->msg[sizeof e->msg - 1] = 0;
        return e->code ? e->code : CLENS_E_FORMAT;
    }
    return CLENS_OK;
}

static clens_chat_template *tnew(void)
{
    clens_chat_template *t = calloc(1, sizeof *t);
    return t;
}

void clens_chat_template_free(clens_chat_template *t)
{
    if (!t) return;
    tpl_arena_free(&t->ar);
    free(t->source);
    free(t->origin);
    json_decref(t->special);
    free(t);
}

int clens_chat_template_from_string(clens_chat_template **out, const char *source, size_t len,
                                    const char *special_tokens_json, clens_error *err)
{
    *out = NULL;
    clens_chat_template *t = tnew();
    if (!t) return clens_err(err, CLENS_E_NOMEM, "chat template: out of memory");
    t->origin = strdup("<string>");
    t->source = malloc(len + 1);
    if (!t->origin || !t->source) {
        clens_chat_template_free(t);
        return clens_err(err, CLENS_E_NOMEM, "chat template: out of memory");
    }
    if (len) memcpy(t->source, source, len);
    t->source[len] = 0;
    t->source_len = len;
    if (special_tokens_json) {
        json_error_t je;
        json_t *cfg = json_loads(special_tokens_json, 0, &je);
        if (!json_is_object(cfg)) {
            json_decref(cfg);
            clens_chat_template_free(t);
            return clens_err(err, CLENS_E_ARG, "special tokens: expected a JSON object (%s)", je.text);
        }
        t->special = special_tokens_from(cfg);
        json_decref(cfg);
    } else t->special = json_object();
    int rc = build(t, err);
    if (rc) {
        clens_chat_template_free(t);
        return rc;
    }
    *out = t;
    return CLENS_OK;
}

int clens_chat_template_open(clens_chat_template **out, const char *path, clens_error *err)
{
    *out = NULL;
    int rc = CLENS_OK;
    char *dir = NULL, *cfg_path = NULL, *jinja_path = NULL;
    json_t *cfg = NULL;
    clens_chat_template *t = tnew();
    if (!t) return clens_err(err, CLENS_E_NOMEM, "chat template: out of memory");
    if (!exists(path)) {
        rc = clens_err(err, CLENS_E_IO, "%s: no such file or directory (expected a model folder, a .jinja file or a tokenizer_config.json)", path);
        goto fail;
    }
    if (is_dir(path)) {
        dir = strdup(path);
        jinja_path = clens_path_join(path, "chat_template.jinja");
        if (jinja_path && !exists(jinja_path)) { free(jinja_path); jinja_path = NULL; }
    } else if (ends_with(path, ".json")) {
        dir = dir_of(path);
        cfg_path = strdup(path);
    } else {
        dir = dir_of(path);
        jinja_path = strdup(path);
    }
    if (!dir) { rc = clens_err(err, CLENS_E_NOMEM, "chat template: out of memory"); goto fail; }
    if (!cfg_path) {
        cfg_path = clens_path_join(dir, "tokenizer_config.json");
        if (cfg_path && !exists(cfg_path)) { free(cfg_path); cfg_path = NULL; }
    }
    if (cfg_path) {
        json_error_t je;
        clens_error e = {0};
        if (clens_json_load_regular(cfg_path, JSON_ALLOW_NUL, &cfg, &je, &e) == CLENS_E_IO) {
            rc = clens_err(err, CLENS_E_IO, "%s", e.msg);
            goto fail;
        }
        if (!json_is_object(cfg)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: line %d col %d: %s (expected a JSON object)", cfg_path, je.line,
                           je.column, cfg ? "not an object" : je.text);
            goto fail;
        }
    }
    t->special = special_tokens_from(cfg);
    if (jinja_path) {
        size_t n;
        if ((rc = clens_read_file(jinja_path, &t->source, &n, err)) != CLENS_OK) goto fail;
        t->source_len = n;
        t->origin = strdup(jinja_path);
    } else {
        json_t *ct = cfg ? json_object_get(cfg, "chat_template") : NULL;
        if (!ct || json_is_null(ct)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: no chat template (expected chat_template.jinja or a \"chat_template\" in tokenizer_config.json)",
                           cfg_path ? cfg_path : path);
            goto fail;
        }
        const char *key = "chat_template";
        if (json_is_array(ct)) {
            json_t *found = NULL, *x;
            size_t i;
            json_array_foreach(ct, i, x) {
                json_t *nm = json_object_get(x, "name");
                if (json_is_string(nm) && !strcmp(json_string_value(nm), "default")) found = json_object_get(x, "template");
            }
            if (!json_is_string(found)) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: chat_template is a list without a \"default\" entry", cfg_path);
                goto fail;
            }
            ct = found;
            key = "chat_template[default]";
        }
        if (!json_is_string(ct)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: chat_template must be a string or a list of {name, template}", cfg_path);
            goto fail;
        }
        size_t n = json_string_length(ct);
        t->source = malloc(n + 1);
        size_t on = strlen(cfg_path) + strlen(key) + 2;
        t->origin = malloc(on);
        if (!t->source || !t->origin) { rc = clens_err(err, CLENS_E_NOMEM, "chat template: out of memory"); goto fail; }
        memcpy(t->source, json_string_value(ct), n);
        t->source[n] = 0;
        t->source_len = n;
        snprintf(t->origin, on, "%s#%s", cfg_path, key);
    }
    if (!t->origin) { rc = clens_err(err, CLENS_E_NOMEM, "chat template: out of memory"); goto fail; }
    if ((rc = build(t, err)) != CLENS_OK) goto fail;
    *out = t;
    t = NULL;
fail:
    clens_chat_template_free(t);
    json_decref(cfg);
    free(dir);
    free(cfg_path);
    free(jinja_path);
    return rc;
}

const char *clens_chat_template_sha256(const clens_chat_template *t) { return t->sha; }
const char *clens_chat_template_origin(const clens_chat_template *t) { return t->origin; }

const char *clens_chat_template_source(const clens_chat_template *t, size_t *len)
{
    if (len) *len = t->source_len;
    return t->source;
}

const char *clens_chat_template_special_token(const clens_chat_template *t, const char *name)
{
    json_t *v = json_object_get(t->special, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

clens_chat_render_params clens_chat_render_default_params(void)
{
    clens_chat_render_params p;
    memset(&p, 0, sizeof p);
    p.add_generation_prompt = -1;
    p.now = CLENS_CHAT_NOW_LOCAL;
    p.max_output = 64u << 20;
    p.max_memory = (size_t)1 << 30;
    p.max_steps = 200000000;
    return p;
}

static void set_var(tpl_arena *a, tv *vars, const char *name, tv v)
{
    tv_dict_set(a, vars->u.d, tv_cstr(name), v);
}

typedef struct render_job {
    const clens_chat_template *t;
    const char *messages_json;
    clens_chat_render_params p;
    tpl_arena *ar;
    clens_error *e;
    json_t *msgs, *kw;
    int want_spans;
    char *res;
    size_t rlen;
    tpl_span *sp;
    size_t nsp;
} render_job;

static int render_body(render_job *J)
{
    tpl_arena *ar = J->ar;
    clens_error *e = J->e;
    json_error_t je;
    J->msgs = json_loads(J->messages_json ? J->messages_json : "", JSON_ALLOW_NUL, &je);
    if (!J->msgs) return clens_err(e, CLENS_E_FORMAT, "messages: line %d col %d: %s", je.line, je.column, je.text);
    if (!json_is_array(J->msgs) && !json_is_object(J->msgs))
        return clens_err(e, CLENS_E_FORMAT, "messages: expected a JSON list of messages or an object with \"messages\"");
    if (J->p.extra_kwargs_json && *J->p.extra_kwargs_json) {
        J->kw = json_loads(J->p.extra_kwargs_json, JSON_ALLOW_NUL, &je);
        if (!json_is_object(J->kw))
            return clens_err(e, CLENS_E_ARG, "extra kwargs: %s (expected a JSON object)", J->kw ? "not an object" : je.text);
    }
    tv vars = tv_dict_new(ar, 16);
    const char *k;
    json_t *x;
    json_object_foreach(J->t->special, k, x) set_var(ar, &vars, tpl_strndup(ar, k, strlen(k)), tv_from_json(ar, x));
    tv messages, tools = tv_none(), documents = tv_none();
    int agp = J->p.add_generation_prompt;
    if (json_is_object(J->msgs)) {
        json_t *m = json_object_get(J->msgs, "messages");
        if (!json_is_array(m)) return clens_err(e, CLENS_E_FORMAT, "messages: the object has no \"messages\" list");
        messages = tv_from_json(ar, m);
        json_object_foreach(J->msgs, k, x) {
            if (!strcmp(k, "messages")) continue;
            if (!strcmp(k, "tools")) { if (!json_is_null(x)) tools = tv_from_json(ar, x); continue; }
            if (!strcmp(k, "documents")) { if (!json_is_null(x)) documents = tv_from_json(ar, x); continue; }
            if (!strcmp(k, "add_generation_prompt")) {
                if (agp < 0) agp = json_is_true(x) || (json_is_integer(x) && json_integer_value(x) != 0);
                continue;
            }
            set_var(ar, &vars, tpl_strndup(ar, k, strlen(k)), tv_from_json(ar, x));
        }
    } else messages = tv_from_json(ar, J->msgs);
    if (J->kw) {
        json_object_foreach(J->kw, k, x) {
            if (!strcmp(k, "messages") || !strcmp(k, "add_generation_prompt"))
                return clens_err(e, CLENS_E_ARG, "extra kwargs: '%s' cannot be set this way", k);
            if (!strcmp(k, "tools")) { tools = tv_from_json(ar, x); continue; }
            if (!strcmp(k, "documents")) { documents = tv_from_json(ar, x); continue; }
            set_var(ar, &vars, tpl_strndup(ar, k, strlen(k)), tv_from_json(ar, x));
        }
    }
    set_var(ar, &vars, "messages", messages);
    set_var(ar, &vars, "tools", tools);
    set_var(ar, &vars, "documents", documents);
    set_var(ar, &vars, "add_generation_prompt", tv_bool(agp > 0));

    tpl_render_opts o;
    o.max_output = J->p.max_output;
    o.max_memory = J->p.max_memory;
    o.max_depth = 1000;
    o.max_steps = J->p.max_steps;
    o.now = J->p.now;
    return tpl_render(J->t->root, ar, vars, &o, &J->res, &J->rlen, J->want_spans ? &J->sp : NULL, &J->nsp, e);
}

static int render_guarded(render_job *J)
{
    jmp_buf jb;
    J->ar->jb = &jb;
    if (setjmp(jb)) return J->e->code ? J->e->code : CLENS_E_FORMAT;
    return render_body(J);
}

int clens_chat_template_render_ex(const clens_chat_template *t, const char *messages_json,
                                  const clens_chat_render_params *params, char **out, size_t *out_len,
                                  size_t **spans, size_t *n_spans, clens_error *err)
{
    clens_chat_render_params d = clens_chat_render_default_params();
    render_job J;
    memset(&J, 0, sizeof J);
    J.t = t;
    J.messages_json = messages_json;
    J.p = params ? *params : d;
    if (!J.p.max_output) J.p.max_output = d.max_output;
    if (!J.p.max_memory) J.p.max_memory = d.max_memory;
    if (J.p.max_steps <= 0) J.p.max_steps = d.max_steps;
    J.want_spans = spans != NULL;
    *out = NULL;
    if (out_len) *out_len = 0;
    if (spans) { *spans = NULL; *n_spans = 0; }
    clens_error local;
    J.e = err ? err : &local;
    memset(J.e, 0, sizeof *J.e);
    J.ar = calloc(1, sizeof *J.ar);
    if (!J.ar) return clens_err(J.e, CLENS_E_NOMEM, "chat template: out of memory");
    tpl_arena_init(J.ar, J.p.max_memory, NULL, J.e);
    int rc = render_guarded(&J);
    json_decref(J.msgs);
    json_decref(J.kw);
    tpl_arena_free(J.ar);
    free(J.ar);
    if (rc != CLENS_OK) {
        free(J.res);
        free(J.sp);
        return rc;
    }
    if (spans && J.nsp) {
        *spans = malloc(2 * J.nsp * sizeof(size_t));
        if (!*spans) {
            free(J.res);
            free(J.sp);
            return clens_err(J.e, CLENS_E_NOMEM, "chat template: out of memory");
        }
        for (size_t i = 0; i < J.nsp; i++) {
            (*spans)[2 * i] = J.sp[i].start;
            (*spans)[2 * i + 1] = J.sp[i].end;
        }
        *n_spans = J.nsp;
    }
    free(J.sp);
    *out = J.res;
    if (out_len) *out_len = J.rlen;
    return CLENS_OK;
}

int clens_chat_template_render(const clens_chat_template *t, const char *messages_json,
                               int add_generation_prompt, const char *extra_kwargs_json,
                               char **out, size_t *out_len, clens_error *err)
{
    clens_chat_render_params p = clens_chat_render_default_params();
    p.add_generation_prompt = add_generation_prompt ? 1 : 0;
    p.extra_kwargs_json = extra_kwargs_json;
    return clens_chat_template_render_ex(t, messages_json, &p, out, out_len, NULL, NULL, err);
}
