/* cmd_detokenize.c: `clens detokenize` (not implemented yet). */
#include "cli.h"

int cmd_detokenize(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("detokenize", CLI_EXIT_ERR, "not implemented yet");
}
