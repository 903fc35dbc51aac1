# HA lease backends: ha_lease_driver runs one lease operation (observe, acquire,
# renew, release, state-get, state-put) against the backend [ha] lease names;
# ha_etcd_lease.sh drives the etcd backend against a three-member etcd cluster
# on loopback (etcd_lib.sh).
add_executable(ha_lease_driver ${CMAKE_CURRENT_LIST_DIR}/ha_lease_driver.c)
target_link_libraries(ha_lease_driver PRIVATE dirconn)
dirconn_integration_test(ha_etcd_lease ha_etcd_lease.sh TIMEOUT 180)
# ... and over client TLS (etcd --client-cert-auth) with etcd authentication: one member on
# https loopback with a CA and certificates made by the test, auth enabled.
dirconn_integration_test(ha_etcd_tls ha_etcd_tls.sh TIMEOUT 180)

# High availability: several dirconnd instances elect one active through a lease
# (ha_lib.sh): the cloud's lease with 2 and 3 instances, and the etcd lease.
dirconn_integration_test(ha_cloud ha_cloud.sh TIMEOUT 600)
dirconn_integration_test(ha_etcd ha_etcd.sh TIMEOUT 600)
# The group owns what any member created: a new active with an empty state rebuilds its object
# map from the cloud inventory, writes nothing when nothing changed, and deletes the orphans.
dirconn_integration_test(ha_orphans ha_orphans.sh TIMEOUT 600)

# A slow provider does not starve the lease (ha_slow_scim.sh): the cloud's SCIM processing
# stalls 8 s per write (fault injection) while one dirconnd holds a 3 s cloud lease; the
# renewals must be answered meanwhile, no self-fence.
dirconn_integration_test(ha_slow_scim ha_slow_scim.sh TIMEOUT 300)

# Self-fencing: SIGSTOP of the active past its lease, SIGCONT, roles sampled every 50 ms
# (ha_fence.sh), on the cloud's lease and on etcd's.
dirconn_integration_test(ha_fence ha_fence.sh TIMEOUT 600)
dirconn_integration_test(ha_fence_etcd ha_fence.sh TIMEOUT 600 ARGS etcd)

# One lease backend per organisation (docs/cloud-api.md "HA mode"): etcd group, refused
# one-shot syncs, ha-mode set from etcd to cloud.
dirconn_integration_test(ha_mode ha_mode.sh TIMEOUT 600)

# Chaos (issue 19, item 6): three instances, a directory writer, SIGSTOP, kill -9 and SIGTERM
# trials of the active, roles sampled every 50 ms, the end state compared by the oracle
# (ha_chaos.sh); on the cloud's lease and on etcd's. About 1.5 minutes each on two cores.
dirconn_integration_test(ha_chaos ha_chaos.sh TIMEOUT 900)
dirconn_integration_test(ha_chaos_etcd ha_chaos.sh TIMEOUT 900 ARGS etcd)

# The retry list of failed writes in the shared state (issue 19, item 1): the active's writes
# fail (fault injection), kill -9, the new active takes the list over and sends those objects.
dirconn_integration_test(ha_retry ha_retry.sh TIMEOUT 600)
