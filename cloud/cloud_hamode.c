/* cloud_hamode.c - an organisation's HA mode: the rules (cloud_hamode.h). */
#include "cloud/cloud_hamode.h"

#include <stdio.h>
#include <string.h>

static const char *const names[] = {NULL, "cloud", "etcd", "none"};

bool cloud_ha_mode_parse(const char *s, enum cloud_ha_mode *out)
{
    for (int m = CLOUD_HA_CLOUD; s != NULL && m <= CLOUD_HA_NONE; m++) {
        if (strcmp(s, names[m]) == 0) {
            *out = (enum cloud_ha_mode)m;
            return true;
        }
    }
    return false;
}

const char *cloud_ha_mode_name(enum cloud_ha_mode m)
{
    return m >= CLOUD_HA_CLOUD && m <= CLOUD_HA_NONE ? names[m] : NULL;
}

enum cloud_ha_mode cloud_ha_mode_effective(enum cloud_ha_mode recorded, bool lease_live)
{
    if (recorded != CLOUD_HA_UNSET)
        return recorded;
    return lease_live ? CLOUD_HA_CLOUD : CLOUD_HA_UNSET;
}

bool cloud_ha_mode_accepts(enum cloud_ha_mode effective, enum cloud_ha_mode declared)
{
    return effective == CLOUD_HA_UNSET || declared == CLOUD_HA_UNSET || effective == declared;
}

enum cloud_ha_mode cloud_ha_mode_to_record(enum cloud_ha_mode recorded, enum cloud_ha_mode declared,
                                           enum cloud_ha_act act)
{
    if (recorded != CLOUD_HA_UNSET)
        return CLOUD_HA_UNSET;
    switch (act) {
    case CLOUD_HA_ACT_LEASE:
        return CLOUD_HA_CLOUD;
    case CLOUD_HA_ACT_WRITE:
    case CLOUD_HA_ACT_REGISTER:
        return declared;
    case CLOUD_HA_ACT_READ:
        break;
    }
    return CLOUD_HA_UNSET;
}

bool cloud_ha_mode_tokenless_ok(enum cloud_ha_mode effective, long long transitions)
{
    switch (effective) {
    case CLOUD_HA_ETCD:
    case CLOUD_HA_NONE:
        return true;
    case CLOUD_HA_CLOUD:
        return false;
    case CLOUD_HA_UNSET:
        break;
    }
    return transitions == 0;
}

bool cloud_ha_mode_change(enum cloud_ha_mode to, bool has_holder, bool lease_live, bool force,
                          bool *release)
{
    bool leaving = to != CLOUD_HA_CLOUD;
    if (release != NULL)
        *release = leaving && has_holder;
    return !(leaving && lease_live && !force);
}

static const char *phrase(enum cloud_ha_mode m)
{
    switch (m) {
    case CLOUD_HA_CLOUD:
        return "the cloud lease";
    case CLOUD_HA_ETCD:
        return "the etcd lease";
    case CLOUD_HA_NONE:
        return "no HA lease";
    case CLOUD_HA_UNSET:
        break;
    }
    return "no recorded HA mode";
}

char *cloud_ha_mode_mismatch(char *buf, size_t n, const char *org, enum cloud_ha_mode effective,
                             bool held_unrecorded, enum cloud_ha_mode declared)
{
    const char *dn = cloud_ha_mode_name(declared);
    snprintf(buf, n,
             "the organisation %s uses %s%s; this connector is configured with %s ([ha] lease = "
             "%s): change its [ha] lease, or the organisation's mode with dirconnctl ha-mode set",
             org, phrase(effective), held_unrecorded ? " (a connector holds it)" : "",
             phrase(declared), dn != NULL ? dn : "?");
    return buf;
}
