/*
 * run_settings.c: what makes two patching runs (or two shards) the same
 * study: the provenance of settings.json (model files, tokenizer, template,
 * dtype, kernel path, host), and the key-by-key comparison that names what
 * differs when a resume or a merge is refused (docs/patch-output.md).
 *
 * Identity keys must agree: records computed with another tokenizer, chat
 * template, weights index, dtype or kernel path would be mixed silently
 * otherwise. host_cpu may differ (a run resumed on another machine of the
 * same kernel path gives the same numbers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/prompts.h"
#include "interp/run_internal.h"

/* The "model name" line of /proc/cpuinfo, or "unknown". */
static void host_cpu(char *buf, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(buf, n, "unknown");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                snprintf(buf, n, "%s", c + (c[1] == ' ' ? 2 : 1));
                buf[strcspn(buf, "\n")] = 0;
            }
            break;
        }
    fclose(f);
}

json_t *run_provenance_json(const clens_model *m, const clens_tokenizer *tok, const clens_chat_template *tmpl)
{
    const clens_model_info *in = clens_model_get_info(m);
    json_t *prov = json_object();
    char config_sha[65], weights_sha[65], cpu[256];
    clens_model_fingerprint(m, config_sha, weights_sha);
    json_object_set_new(prov, "config_sha256", config_sha[0] ? json_string(config_sha) : json_null());
    json_object_set_new(prov, "weights_index_sha256", weights_sha[0] ? json_string(weights_sha) : json_null());
    json_object_set_new(prov, "tokenizer_sha256", json_string(clens_tokenizer_sha256(tok)));
    json_object_set_new(prov, "template_sha256", tmpl ? json_string(clens_chat_template_sha256(tmpl)) : json_null());
    json_object_set_new(prov, "dtype", json_string(in->dtype == CLENS_DTYPE_F32 ? "float32"
                                                   : in->dtype == CLENS_DTYPE_BF16 ? "bfloat16" : "float16"));
    json_object_set_new(prov, "kernel", json_string(clens_model_kernel_name(m)));
    json_object_set_new(prov, "arch", json_string(in->arch_name));
    json_object_set_new(prov, "n_layers", json_integer(in->n_layers));
    host_cpu(cpu, sizeof cpu);
    json_object_set_new(prov, "host_cpu", json_string(cpu));
    return prov;
}
