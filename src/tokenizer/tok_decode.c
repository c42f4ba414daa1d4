/*
 * tok_decode.c: ids -> text, as HF tokenizers Tokenizer::decode (0.22):
 * every id is turned into its token string (added tokens first, then the
 * model vocabulary; ids with neither are skipped), special added tokens are
 * dropped when skip_special is set, then the decoder runs: ByteLevel maps each
 * token's characters back to bytes (a token with a character outside the
 * GPT-2 byte alphabet contributes its own UTF-8 bytes) and decodes the whole
 * byte string with U+FFFD replacement (String::from_utf8_lossy); without a
 * decoder the token strings are joined with single spaces.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int clens_detokenize(const clens_tokenizer *t, const int32_t *ids, int n, int skip_special,
                     char **text, size_t *len, clens_error *err)
{
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_ids || !t->id_str[id] || (skip_special && t->is_special[id])) continue;
        total += (size_t)(t->dec_byte_level ? t->dec_len[id] : t->id_len[id] + 1);
    }
    char *raw = malloc(total + 1);
    if (!raw) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    size_t o = 0;
    int first = 1;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_ids || !t->id_str[id] || (skip_special && t->is_special[id])) continue;
        if (t->dec_byte_level) {
            memcpy(raw + o, t->dec_bytes[id], (size_t)t->dec_len[id]);
            o += (size_t)t->dec_len[id];
        } else {
            if (!first) raw[o++] = ' ';
            memcpy(raw + o, t->id_str[id], (size_t)t->id_len[id]);
            o += (size_t)t->id_len[id];
        }
        first = 0;
    }
    raw[o] = 0;
    if (t->dec_byte_level && tok_utf8_valid_prefix(raw, o) != o) {
        char *fixed;
        size_t fl;
        if (tok_utf8_lossy(raw, o, &fixed, &fl)) {
            free(raw);
            return clens_err(err, CLENS_E_NOMEM, "out of memory");
        }
        free(raw);
        raw = fixed;
        o = fl;
    }
    *text = raw;
    *len = o;
    return CLENS_OK;
}
