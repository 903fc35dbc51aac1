/*
 * cloud_hamode.h - an organisation's HA mode (docs/cloud-api.md "HA mode"): the rules, without
 * the store or HTTP, so that they are unit tested.
 *
 * An organisation uses one lease backend: the cloud lease (fencing tokens on writes), an etcd
 * lease (the cloud knows nothing of it) or none (one instance). The cloud records which, and
 * refuses a connector that declares another mode (header Dirconn-HA-Mode), before anything is
 * written.
 */
#ifndef DIRCONN_CLOUD_HAMODE_H
#define DIRCONN_CLOUD_HAMODE_H

#include <stdbool.h>
#include <stddef.h>

#define CLOUD_HA_MODE_HEADER "Dirconn-HA-Mode"

enum cloud_ha_mode { CLOUD_HA_UNSET = 0, CLOUD_HA_CLOUD, CLOUD_HA_ETCD, CLOUD_HA_NONE };

/* What a connector request does, for the recording rule. */
enum cloud_ha_act {
    CLOUD_HA_ACT_READ,     /* anything that writes nothing: checked, never recorded */
    CLOUD_HA_ACT_WRITE,    /* a SCIM write or PUT /state: records the declared mode */
    CLOUD_HA_ACT_LEASE,    /* a connector takes or renews the cloud lease: records cloud */
    CLOUD_HA_ACT_REGISTER, /* POST /connectors with haMode: records it */
};

/* cloud_ha_mode_parse - "cloud", "etcd" or "none" (exactly) into *out; false otherwise. */
bool cloud_ha_mode_parse(const char *s, enum cloud_ha_mode *out);

/* cloud_ha_mode_name - "cloud", "etcd", "none"; NULL for CLOUD_HA_UNSET. */
const char *cloud_ha_mode_name(enum cloud_ha_mode m);

/*
 * cloud_ha_mode_effective - the mode in force: the recorded one; when none is recorded and a
 * connector holds an unexpired cloud lease (lease_live), the cloud lease; else unset.
 */
enum cloud_ha_mode cloud_ha_mode_effective(enum cloud_ha_mode recorded, bool lease_live);

/*
 * cloud_ha_mode_accepts - may a request that declares `declared` (CLOUD_HA_UNSET: it declares
 * nothing, an older connector) go on in an org whose mode in force is `effective`? Yes when
 * either is unset or both are equal.
 */
bool cloud_ha_mode_accepts(enum cloud_ha_mode effective, enum cloud_ha_mode declared);

/*
 * cloud_ha_mode_to_record - the mode an accepted request records: CLOUD_HA_UNSET (nothing)
 * when a mode is recorded already or the request reads; cloud for ACT_LEASE; the declared mode
 * (maybe unset) for ACT_WRITE and ACT_REGISTER.
 */
enum cloud_ha_mode cloud_ha_mode_to_record(enum cloud_ha_mode recorded, enum cloud_ha_mode declared,
                                           enum cloud_ha_act act);

/*
 * cloud_ha_mode_tokenless_ok - may a connector write without Dirconn-Fencing-Token? With the
 * etcd lease or none: always. With the cloud lease: never. Unset (no mode recorded, no live
 * lease): only while the lease was never taken (transitions 0), as before modes existed.
 */
bool cloud_ha_mode_tokenless_ok(enum cloud_ha_mode effective, long long transitions);

/*
 * cloud_ha_mode_change - may an operator set the mode to `to` (UNSET: forget it)? Leaving the
 * cloud lease while a connector holds it unexpired (lease_live) is refused unless force.
 * *release (may be NULL) tells whether the lease must then be released (to is not cloud and
 * the lease has a holder, has_holder), so that its holder is fenced.
 */
bool cloud_ha_mode_change(enum cloud_ha_mode to, bool has_holder, bool lease_live, bool force,
                          bool *release);

/*
 * cloud_ha_mode_mismatch - the one-line refusal naming both modes, into buf (size n):
 * "the organisation acme uses the etcd lease; this connector is configured with the cloud lease
 * ([ha] lease = cloud); ...". held_unrecorded: the mode in force comes from a live lease, not
 * from a record. Returns buf.
 */
char *cloud_ha_mode_mismatch(char *buf, size_t n, const char *org, enum cloud_ha_mode effective,
                             bool held_unrecorded, enum cloud_ha_mode declared);

#endif
