"""A simulated fleet for the operator: what 1,000 WorkerPools cost the cluster and Redis.

``python -m bench.operator`` (``make bench-operator``; ``--smoke`` in ``make
test``) starts the pod tier's control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok's fake nodes), a few real Redis
servers with several databases each, and creates N WorkerPools and N
CronSchedules across namespaces and Redis URLs. Pods use an image no one can
run, so kwok parks them in ``ErrImagePull``: the fleet costs API objects, not
processes. Then, in this order (see :mod:`bench.operator.fleet`):

1. a **baseline** window without the operator (controllers, scheduler, kwok);
2. the operator (one process, or two elected replicas) until every pool has a
   status and the Deployment controller has observed every Deployment the
   operator made, two poll intervals more, then a **steady-state** window:
   API requests/s by verb and resource and etcd writes/s from the apiserver's
   own ``/metrics``
   (``apiserver_request_total``, ``etcd_requests_total``), minus the baseline;
   Redis commands/s from ``INFO commandstats``; the operator's CPU and RSS
   from ``/proc``;
3. a **burst**: jobs on 10 % of the pools at once; the time from the submit to
   each pool's Deployment asking for its new replica count (p50/p99);
4. **schedulers**: real ``bananas scheduler`` processes for a sample of the
   Redis URLs (10 of 100; the other scheduler Deployments run nobody), one
   CronSchedule per sampled URL edited to fire every minute; the Redis
   commands/s the schedulers add and the time from each slot to its job;
5. **failover** (elected replicas only): SIGKILL the leader, submit jobs to a
   few pools, the time until the standby scaled them.

``--code DIR`` runs the operator from another checkout (a ``git worktree add
--detach``), for before/after comparisons with the same harness.
"""
