# High availability: several dirconnd instances elect one active through a lease.
dirconn_integration_test(ha_cloud ha_cloud.sh TIMEOUT 600)
