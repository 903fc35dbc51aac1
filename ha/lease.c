/*
 * lease.c - what the lease backends share (see lease.h).
 */
#include "ha/lease.h"

#include <stdlib.h>
#include <string.h>

void lease_info_clear(struct lease_info *li)
{
    if (li == NULL)
        return;
    free(li->holder);
    free(li->version);
    free(li->acquired_at);
    free(li->renewed_at);
    memset(li, 0, sizeof(*li));
}

static bool dup_field(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

bool lease_info_copy(struct lease_info *dst, const struct lease_info *src)
{
    *dst = *src;
    if (!dup_field(&dst->holder, src->holder) || !dup_field(&dst->version, src->version) ||
        !dup_field(&dst->acquired_at, src->acquired_at) ||
        !dup_field(&dst->renewed_at, src->renewed_at)) {
        lease_info_clear(dst);
        return false;
    }
    return true;
}

void lease_backend_free(struct lease_backend *b)
{
    if (b == NULL)
        return;
    if (b->ops != NULL && b->ops->free != NULL)
        b->ops->free(b->self);
    free(b->identity);
    memset(b, 0, sizeof(*b));
}

enum dirconn_err lease_server_error(enum dirconn_err e, struct dirconn_error *err)
{
    enum dirconn_err to = e == DIRCONN_ECLOUD_CONNECT ? DIRCONN_ELEASE_CONNECT
                          : e == DIRCONN_ECLOUD_AUTH  ? DIRCONN_ELEASE_AUTH
                          : e == DIRCONN_ECLOUD       ? DIRCONN_ELEASE_SERVER
                                                      : e;
    if (err != NULL && err->code == e)
        err->code = to;
    return to;
}
