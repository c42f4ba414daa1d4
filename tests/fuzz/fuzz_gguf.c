/* fuzz_gguf.c: libFuzzer harness for the GGUF reader (src/formats/gguf.c):
 * input = a whole file; a parsed file is walked (every key, every tensor's
 * bytes) so that out-of-range pointers show up under ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    gguf_file g;
    clens_error err = {0};
    if (gguf_parse(&g, data, n, "fuzz", &err) == 0) {
        volatile unsigned sum = 0;
        for (uint64_t i = 0; i < g.n_kv; i++) sum += (unsigned)strlen(g.kv[i].key) + (g.kv[i].str ? (unsigned)strlen(g.kv[i].str) : 0);
        for (uint64_t i = 0; i < g.n_tensors; i++)
            for (size_t k = 0; k < g.tensors[i].nbytes; k++) sum += ((const uint8_t *)g.tensors[i].data)[k];
        (void)sum;
        gguf_free(&g);
    }
    return 0;
}
