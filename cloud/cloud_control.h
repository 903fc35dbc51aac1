/*
 * cloud_control.h - the connector control API of dirconn-cloud (docs/cloud-api.md).
 *
 * OAuth 2.0 client credentials (RFC 6749 4.4, client authentication 2.3.1),
 * connector registration and secrets, the HA lease (modelled on the
 * Kubernetes coordination.k8s.io/v1 Lease) and its fencing token, the
 * connector state document, sync reports and per-org statistics.
 */
#ifndef DIRCONN_CLOUD_CONTROL_H
#define DIRCONN_CLOUD_CONTROL_H

#include "cloud/cloud_hamode.h"
#include "cloud/cloud_reply.h"

/* cloud_control_oauth_token - POST /oauth/token. Answers and frees req. */
void cloud_control_oauth_token(struct cloud_req *req);

/* cloud_control_handle - everything under /v1/orgs/{org}/. Answers and frees req. */
void cloud_control_handle(struct cloud_req *req);

/* cloud_control_orgs - GET /v1/orgs (admin token): the organisations served. Frees req. */
void cloud_control_orgs(struct cloud_req *req);

/* cloud_control_faults - GET/PUT /v1/faults (admin token). Answers and frees req. */
void cloud_control_faults(struct cloud_req *req);

/*
 * cloud_control_ha_mode - the organisation's HA mode for an authenticated request
 * (docs/cloud-api.md "HA mode"). Admin requests always pass. A connector request that declares
 * (header Dirconn-HA-Mode; for act CLOUD_HA_ACT_LEASE: the cloud lease) another mode than the
 * one in force is answered 409 haModeMismatch with a message naming both (req is freed, -1);
 * an accepted one records its mode when none is recorded and act says so
 * (cloud_ha_mode_to_record). Returns 0 when the request may go on.
 */
int cloud_control_ha_mode(struct cloud_req *req, const char *org, enum cloud_ha_act act);

/*
 * cloud_control_fence - decide whether an authenticated write for org may
 * proceed. Admin writes always may. A connector write carrying the
 * Dirconn-Fencing-Token header may if the connector is the unexpired lease
 * holder and the token equals leaseTransitions; one without the header may
 * when the org uses the etcd lease or none, never when it uses the cloud
 * lease, and without a recorded mode only while the org's lease has never
 * been acquired (leaseTransitions 0). The write first passes
 * cloud_control_ha_mode (CLOUD_HA_ACT_WRITE: it may record the mode).
 * Otherwise the write is counted in fencedRejections, answered 409 (with
 * header Dirconn-Fenced: 1) and -1 is returned (req is freed).
 */
int cloud_control_fence(struct cloud_req *req, const char *org);

#endif
