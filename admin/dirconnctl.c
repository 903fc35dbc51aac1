/* dirconnctl - the dirconn admin CLI (subcommands are added module by module). */
#include "connector/error.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        printf("usage: dirconnctl COMMAND [OPTIONS]\n");
        return argc < 2 ? dirconn_exit_code(DIRCONN_EUSAGE) : 0;
    }
    fprintf(stderr, "dirconnctl: unknown command '%s'\n", argv[1]);
    return dirconn_exit_code(DIRCONN_EUSAGE);
}
