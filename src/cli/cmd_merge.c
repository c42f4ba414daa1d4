/* cmd_merge.c: `clens merge` (not implemented yet). */
#include "cli.h"

int cmd_merge(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("merge", CLI_EXIT_ERR, "not implemented yet");
}
