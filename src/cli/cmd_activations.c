/* cmd_activations.c: `clens activations` (not implemented yet). */
#include "cli.h"

int cmd_activations(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("activations", CLI_EXIT_ERR, "not implemented yet");
}
