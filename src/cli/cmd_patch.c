/* cmd_patch.c: `clens patch` (not implemented yet). */
#include "cli.h"

int cmd_patch(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("patch", CLI_EXIT_ERR, "not implemented yet");
}
