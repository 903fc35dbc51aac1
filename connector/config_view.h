/*
 * config_view.h - the configuration as a whole: the checks that need the
 * modules above config (the [mapping] expressions, the [avatar] pattern), and
 * the rendering of the effective configuration that `dirconnctl config show`
 * and the `config` member of `dirconnctl status --json` print (docs/cli.md).
 *
 * Every key of the options table is rendered with its value, its default, the
 * source of the value ("FILE:LINE" or "default") and its reload class. No key
 * of the file holds a secret (config_load refuses them); the secrets the
 * connector uses are listed apart, each with where it comes from (a file named
 * by a *_file key, or an entry of the encrypted secret store) and the value
 * "<secret>": their content is never read here. A *_file path is not a secret.
 */
#ifndef DIRCONN_CONFIG_VIEW_H
#define DIRCONN_CONFIG_VIEW_H

#include "connector/core/config.h"
#include "connector/core/error.h"

#include <jansson.h>
#include <stdio.h>

/* The value printed in place of every secret. */
#define CONFIG_SECRET_MASK "<secret>"

/*
 * config_check - compile what config_load cannot: the [mapping] lines of the
 * three object kinds and, with [avatar] enabled, the avatar pattern, with the
 * same code a sync run uses (mapping_compile). Called after every config_load
 * of dirconnctl and dirconnd (start and reload), so that a bad expression is an
 * error at load and never at the next sync.
 *
 * Returns DIRCONN_OK, or DIRCONN_ECONFIG with err one line
 * "FILE:LINE: [mapping] <path>: <cause>" or "FILE:LINE: [avatar] pattern: <cause>",
 * or DIRCONN_ENOMEM. cfg is only read.
 */
enum dirconn_err config_check(const struct config *cfg, struct dirconn_error *err);

/*
 * config_render_json - the effective configuration as a new JSON object
 * (caller owns the reference; NULL when out of memory):
 *   {"file": PATH,
 *    "options": [{"section", "key", "type", "value": string or null, "default": string or
 *                 null, "source": "FILE:LINE" or "default", "reload": "now"|"next-run"|
 *                 "restart", "secret_file": bool}, ...],     (options-table order)
 *    "mapping": [{"key", "value", "source": "FILE:LINE", "reload": "next-run"}, ...],
 *    "secrets": [{"name", "value": "<secret>", "source": "file" | "secret-store",
 *                 "file": PATH (source file) , "entry": NAME (source secret-store),
 *                 "set_by": "[section] key" or null}, ...]}
 * Values are in the file's syntax (config_value_text).
 */
json_t *config_render_json(const struct config *cfg);

/*
 * config_render_text - print the rendering of config_render_json (view) on out,
 * one line per key: "[section] key = VALUE  (source S, default D, reload R)",
 * "(unset)" for a key without a value, then the [mapping] lines and one line per
 * secret: "secret NAME = <secret>  (source ...)". Returns 0, or -1 on a write error.
 */
int config_render_text(const json_t *view, FILE *out);

#endif
