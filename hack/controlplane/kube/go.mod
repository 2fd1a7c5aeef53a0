// Wrapper module for building kube-apiserver and kube-controller-manager from
// the Go module proxy. This committed file only names the module:
// hack/controlplane.sh copies this directory into the build cache and there
//   - requires k8s.io/kubernetes at K8S_VERSION (hack/controlplane/versions.env),
//   - replaces every k8s.io/* staging module that k8s.io/kubernetes's own
//     go.mod points at ./staging/... with the published v0.<minor>.<patch>
//     release (the list is generated from that go.mod, never kept by hand),
//   - copies its godebug settings, and
//   - runs `go get` + `go build k8s.io/kubernetes/cmd/...`.
// There is no Go code here: the main packages are Kubernetes's own.
module bananas.local/hack/controlplane/kube

go 1.23.0
