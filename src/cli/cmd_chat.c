/* cmd_chat.c: `clens chat` (not implemented yet). */
#include "cli.h"

int cmd_chat(int argc, char **argv)
{
    (void)argc; (void)argv;
    return cli_errorf("chat", CLI_EXIT_ERR, "not implemented yet");
}
