// Wrapper module for building etcd from the Go module proxy.
// hack/controlplane.sh copies this directory into the build cache and there
// requires go.etcd.io/etcd/server/v3 at the release the pinned Kubernetes
// version expects (see hack/controlplane/versions.env), then builds main.go.
module bananas.local/hack/controlplane/etcd

go 1.23.0
