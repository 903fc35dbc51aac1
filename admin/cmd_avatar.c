/*
 * cmd_avatar.c - dirconnctl avatar-test: the "Test" button of the avatar
 * configuration (Cisco Directory Connector guide, "Configure an Avatar").
 */
#define _DEFAULT_SOURCE /* getopt_long */
#include "admin/ctl.h"
#include "connector/avatar.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_CONFIG = 'c', OPT_HELP = 'h', OPT_JSON = 0x100, OPT_PATTERN, OPT_VALUE, OPT_ATTRIBUTE };

static const char avatar_test_help[] =
    "usage: dirconnctl avatar-test [--pattern PATTERN | --config FILE] --value VALUE\n"
    "                              [--attribute NAME] [--json]\n"
    "\n"
    "Render an avatar URI pattern with a sample value and print the final URI, as the\n"
    "Test button does. Placeholders are {attribute} (the whole value) and\n"
    "{attribute:regex} (the first match of the regex); '{{' and '}}' are literal braces.\n"
    "Without --pattern, the [avatar] pattern of the configuration file is used. With\n"
    "--attribute, only placeholders of that attribute receive the value.\n"
    "\n"
    "  dirconnctl avatar-test --value abcd@example.com \\\n"
    "      --pattern 'http://www.example.com/dir/photo/zoom/{mail:.*?(?=@.*)}.jpg'\n"
    "  http://www.example.com/dir/photo/zoom/abcd.jpg\n"
    "\n"
    "Exit codes: 0 the URI was printed, 1 the value gives no URI (no match), 2 usage,\n"
    "3 the pattern is invalid.\n";

int cmd_avatar_test(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, OPT_HELP},
        {"pattern", required_argument, NULL, OPT_PATTERN},
        {"value", required_argument, NULL, OPT_VALUE},
        {"attribute", required_argument, NULL, OPT_ATTRIBUTE},
        {NULL, 0, NULL, 0},
    };
    const char *pattern = NULL, *value = NULL, *attribute = NULL;
    bool config_given = false;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            ctl->config_path = optarg;
            config_given = true;
            break;
        case OPT_JSON:
            ctl->json = true;
            break;
        case OPT_HELP:
            fputs(avatar_test_help, stdout);
            return 0;
        case OPT_PATTERN:
            pattern = optarg;
            break;
        case OPT_VALUE:
            value = optarg;
            break;
        case OPT_ATTRIBUTE:
            attribute = optarg;
            break;
        case ':':
            return ctl_usage_error(ctl, "option '%s' needs a value", argv[optind - 1]);
        default:
            return ctl_usage_error(ctl, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return ctl_usage_error(ctl, "unexpected argument '%s'", argv[optind]);
    if (value == NULL)
        return ctl_usage_error(ctl, "--value is required");
    if (pattern != NULL && config_given)
        return ctl_usage_error(ctl, "give --pattern or --config, not both");

    struct dirconn_error err;
    dirconn_error_clear(&err);
    if (pattern == NULL) {
        enum dirconn_err loaded = ctl_load_config(ctl);
        if (loaded != DIRCONN_OK)
            return dirconn_exit_code(loaded);
        pattern = ctl->cfg->avatar_pattern;
        if (pattern == NULL)
            return ctl_usage_error(ctl, "no --pattern, and %s has no [avatar] pattern",
                                   ctl->config_path);
    }

    struct avatar *a = NULL;
    if (avatar_compile(pattern, &a, &err) != DIRCONN_OK)
        return ctl_fail(ctl, &err);
    char *uri = NULL;
    char why[DIRCONN_ERROR_LEN];
    enum dirconn_err rc = avatar_render_value(a, attribute, value, &uri, why, sizeof(why));
    avatar_free(a);
    if (rc != DIRCONN_OK) {
        dirconn_error_set(&err, rc, "no avatar URI: %s", why);
        return ctl_fail(ctl, &err);
    }
    if (ctl->json) {
        json_t *doc = json_pack("{s:s,s:s,s:s}", "pattern", pattern, "value", value, "uri", uri);
        char *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
        if (text == NULL) {
            free(uri);
            dirconn_error_set(&err, DIRCONN_ENOMEM, "out of memory");
            return ctl_fail(ctl, &err);
        }
        puts(text);
        free(text);
    } else {
        puts(uri);
    }
    free(uri);
    return 0;
}
