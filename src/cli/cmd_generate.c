/* cmd_generate.c: `clens generate` (not implemented yet). */
#include "cli.h"

int cmd_generate(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("generate", CLI_EXIT_ERR, "not implemented yet");
}
