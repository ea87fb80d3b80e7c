# Jenkins "Execute shell" step: deploy this build's commit to the job's environment.
#
# Jenkins runs it with /bin/sh -xe in $WORKSPACE (a checkout of the job's repository) and sets JOB_NAME,
# BUILD_NUMBER, BUILD_URL and GIT_COMMIT; gkube reads them. Set once per agent or folder:
#   GKUBE_ETCD_ENDPOINTS   etcd of gkube's records (TLS/auth from ETCDCTL_CACERT/CERT/KEY/USER)
#   KUBECONFIG             the cluster (or run the agent in a pod with gkube's service account)
# and optionally GKUBE_DEPLOY_ARGS (for example "--timeout 15m").
#
# Exit codes decide the build: 0 deployed or nothing to do; 1 failed (rolled back; see the summary);
# 2 bad input or configuration; 3 another build of the job holds the lock; 4 etcd, the API server, the
# registry or Gluster unreachable; 5 needs a person (gkube describe "$JOB_NAME"); 143 aborted.
gkube deploy --summary-file "$WORKSPACE/gkube-summary.json" ${GKUBE_DEPLOY_ARGS:-}
