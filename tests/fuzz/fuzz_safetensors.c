/* fuzz_safetensors.c: libFuzzer harness for the safetensors header parser:
 * input = header JSON; the data section size is taken from the first bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    if (n < 2) return 0;
    size_t data_size = (size_t)data[0] << 8 | data[1];
    st_tensor *ts = NULL;
    int nt = 0;
    clens_error err = {0};
    if (st_parse_header((const char *)data + 2, n - 2, data_size, "fuzz", &ts, &nt, &err) == 0) {
        for (int i = 0; i < nt; i++) free(ts[i].name);
        free(ts);
    }
    return 0;
}
