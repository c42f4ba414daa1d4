/* cmd_pairs.c: `clens pairs` (not implemented yet). */
#include "cli.h"

int cmd_pairs(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("pairs", CLI_EXIT_ERR, "not implemented yet");
}
