/* cmd_logits.c: `clens logits` (not implemented yet). */
#include "cli.h"

int cmd_logits(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("logits", CLI_EXIT_ERR, "not implemented yet");
}
