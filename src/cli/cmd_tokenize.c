/* cmd_tokenize.c: `clens tokenize` (not implemented yet). */
#include "cli.h"

int cmd_tokenize(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("tokenize", CLI_EXIT_ERR, "not implemented yet");
}
