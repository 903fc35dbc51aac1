/*
 * avatar.h - avatar URI templating (Cisco Directory Connector guide,
 * "Configure an Avatar"): a URI pattern with placeholders filled from the
 * user's directory attributes, sent as the SCIM photos value (RFC 7643 4.1.2,
 * type "photo").
 *
 * Pattern syntax (docs/mapping.md, "Avatar URI pattern"):
 *   {attribute}         the whole first value of the attribute
 *   {attribute:regex}   the first match of regex in the value (PCRE2 in UTF and
 *                       UCP modes, so \w \d \b are Unicode-aware as in .NET regular
 *                       expressions; lookaround allowed); e.g. {mail:.*?(?=@.*)}
 *                       takes the part of the mail address before '@'
 *   {{  }}              a literal '{' or '}'
 * Inserted text is percent-encoded (RFC 3986 2.1, unreserved characters
 * 2.3 kept) with libcurl's curl_easy_escape; the literal text of the pattern is
 * kept as written. The pattern must start with http:// or https://, and the
 * final URI is checked to be an absolute http(s) URI with libcurl's URL API.
 *
 *   http://www.example.com/dir/photo/zoom/{mail:.*?(?=@.*)}.jpg
 *   with mail abcd@example.com  ->  http://www.example.com/dir/photo/zoom/abcd.jpg
 *
 * A compiled avatar is immutable and may be shared by threads.
 */
#ifndef DIRCONN_AVATAR_H
#define DIRCONN_AVATAR_H

#include "connector/core/error.h"
#include "connector/ldap_entry.h"

#include <stddef.h>

/* Longest final URI accepted, in bytes. */
#define AVATAR_URI_MAX 2048

struct avatar;

/*
 * avatar_compile - parse a pattern and compile the regular expression of each
 * placeholder once.
 *
 * pattern: NUL-terminated UTF-8. On success *out receives a new avatar owned
 * by the caller (free with avatar_free) and DIRCONN_OK is returned. Errors
 * (*out NULL, err filled with one line starting "[avatar] pattern: "):
 *   DIRCONN_ECONFIG  unbalanced braces, an empty or invalid attribute name, a
 *                    regex PCRE2 does not compile (the message names the
 *                    placeholder, PCRE2's message and the offset in the
 *                    regex), or a pattern that cannot give an absolute
 *                    http(s) URI (it must start with http:// or https://);
 *   DIRCONN_ENOMEM   out of memory.
 */
enum dirconn_err avatar_compile(const char *pattern, struct avatar **out,
                                struct dirconn_error *err);

/*
 * avatar_attributes - the directory attributes the placeholders read, as a
 * NULL-terminated array without duplicates (case-insensitive). Owned by a.
 */
const char *const *avatar_attributes(const struct avatar *a);

/*
 * avatar_render - the avatar URI of one entry. Each placeholder reads the
 * first value of its attribute in e.
 *
 * On DIRCONN_OK *uri receives a NUL-terminated string the caller frees with
 * free(). DIRCONN_EFAIL means the entry has no avatar: *uri is NULL and why
 * (why_len bytes, may be NULL) holds one line for the synchronisation report:
 * the attribute is missing or not text, the regex does not match (or matches
 * only an empty string), or the result is not an absolute http(s) URI or is
 * longer than AVATAR_URI_MAX. DIRCONN_ENOMEM when out of memory.
 */
enum dirconn_err avatar_render(const struct avatar *a, const struct ldap_entry *e, char **uri,
                               char *why, size_t why_len);

/*
 * avatar_render_value - as avatar_render, with one given value instead of an
 * entry (the "Test" button of the seed; dirconnctl avatar-test). attribute
 * may be NULL: every placeholder then receives value; otherwise placeholders
 * naming attribute (case-insensitive) receive value and any other placeholder
 * makes the result DIRCONN_EFAIL ("no value given for attribute X").
 */
enum dirconn_err avatar_render_value(const struct avatar *a, const char *attribute,
                                     const char *value, char **uri, char *why, size_t why_len);

/* avatar_free - free a compiled avatar. a may be NULL. */
void avatar_free(struct avatar *a);

#endif
