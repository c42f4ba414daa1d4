/* fuzz_config.c: libFuzzer harness for the config.json loader. */
#include <stdint.h>

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    model_config c;
    clens_error err = {0};
    if (config_parse(&c, (const char *)data, n, "fuzz/config.json", &err) == 0) config_free(&c);
    return 0;
}
