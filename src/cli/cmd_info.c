/* cmd_info.c: `clens info` (not implemented yet). */
#include "cli.h"

int cmd_info(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("info", CLI_EXIT_ERR, "not implemented yet");
}
