#!/usr/bin/env bash
# Build, cache and reuse the binaries of the e2e control plane:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and helm,
# all compiled from the Go module proxy with the local Go toolchain (no
# downloads of prebuilt binaries, no Docker).
#
# Usage: hack/controlplane.sh [COMPONENT...]
#   COMPONENT is one of etcd, kube-apiserver, kube-controller-manager,
#   kube-scheduler, kwok, helm; none means all six. The last line on stdout is
#   the bin directory, so
#     export KUBEBUILDER_ASSETS=$(hack/controlplane.sh | tail -1)
#   works. Progress, timings and errors go to stderr.
#
# Versions: hack/controlplane/versions.env (K8S_VERSION, ETCD_VERSION,
# HELM_VERSION, KWOK_VERSION), overridable with BANANAS_K8S_VERSION,
# BANANAS_ETCD_VERSION, BANANAS_HELM_VERSION and BANANAS_KWOK_VERSION.
#
# Output: ${BANANAS_CACHE:-<repo>/.cache}/controlplane/<k8s-version>/
#   bin/    the binaries (each moved in only after its --version checks out)
#   share/kwok/stages/  kwok's own Stage configs, copied from its module
#   src/    the generated wrapper modules (go.mod/go.sum kept for inspection)
#   logs/   the output of every build step
# A binary already in bin/ that reports the wanted version is reused, so a
# warm run takes a few seconds. Go's own caches (GOMODCACHE, GOCACHE) make a
# rebuild after `rm -rf bin/` much faster than the cold build.
#
# How Kubernetes is built: k8s.io/kubernetes's go.mod requires its k8s.io/*
# staging modules at v0.0.0 and replaces them with ./staging/... paths, which
# the module proxy does not ship. The wrapper module (hack/controlplane/kube)
# requires k8s.io/kubernetes at K8S_VERSION and replaces each of those staging
# modules with its published release v0.<minor>.<patch>; the list is read from
# that release's go.mod here, at build time. Versions are stamped with
# -ldflags -X k8s.io/component-base/version.* so `kubectl version` reports
# K8S_VERSION.
#
# Environment: GO (go binary; default `go` on PATH, else /usr/local/go/bin/go),
# BANANAS_CACHE (cache root). Builds run with CGO_ENABLED=0, -trimpath, -p 2
# and GOTOOLCHAIN=local (never downloads a toolchain). Concurrent runs are
# serialised with flock on <output>/.lock.
set -Eeuo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WRAPPERS="$REPO_ROOT/hack/controlplane"
ALL_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok helm)
# kwok's Stage configs the e2e harness uses, as paths inside the kwok module.
KWOK_STAGE_FILES=(
    kustomize/stage/node/fast/node-initialize.yaml
    kustomize/stage/node/heartbeat/node-heartbeat.yaml
    kustomize/stage/pod/general/pod-create.yaml
    kustomize/stage/pod/general/pod-delete.yaml
)

log() { printf 'controlplane: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Pinned versions; the environment wins over versions.env.
# shellcheck source=hack/controlplane/versions.env
source "$WRAPPERS/versions.env"
K8S_VERSION=${BANANAS_K8S_VERSION:-$K8S_VERSION}
ETCD_VERSION=${BANANAS_ETCD_VERSION:-${ETCD_VERSION:-}}
HELM_VERSION=${BANANAS_HELM_VERSION:-$HELM_VERSION}
KWOK_VERSION=${BANANAS_KWOK_VERSION:-$KWOK_VERSION}
[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] ||
    die "K8S_VERSION must look like v1.MINOR.PATCH, got '$K8S_VERSION'"
K8S_MINOR=${BASH_REMATCH[1]}
STAGING_VERSION="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

OUT_DIR="${BANANAS_CACHE:-$REPO_ROOT/.cache}/controlplane/$K8S_VERSION"
BIN_DIR="$OUT_DIR/bin"
SRC_DIR="$OUT_DIR/src"
LOG_DIR="$OUT_DIR/logs"
STAGES_DIR="$OUT_DIR/share/kwok/stages"

components=("$@")
((${#components[@]})) || components=("${ALL_COMPONENTS[@]}")
for c in "${components[@]}"; do
    case $c in
    etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kwok | helm) ;;
    -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown component '$c' (want: ${ALL_COMPONENTS[*]})" ;;
    esac
done

fmt_duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# run NAME CMD...: run CMD with its output in logs/NAME.log. On failure print
# the command, its exit status and the tail of its output, and exit non-zero.
run() {
    local name=$1 status=0
    shift
    local logfile="$LOG_DIR/$name.log"
    log "\$ $*"
    "$@" >"$logfile" 2>&1 || status=$?
    if ((status != 0)); then
        log "FAILED (exit $status): $*"
        log "in $(pwd); full output: $logfile"
        printf '%s\n' '----- output (last 150 lines) -----' >&2
        tail -n 150 "$logfile" >&2
        printf '%s\n' '-----------------------------------' >&2
        exit "$status"
    fi
}

# capture NAME CMD...: like run, and print CMD's stdout.
capture() {
    run "$@"
    cat "$LOG_DIR/$1.log"
}

# version_of NAME [PATH]: the version the binary NAME at PATH (default: in
# bin/) reports, in the form of want_version; nothing when absent or broken.
version_of() {
    local bin=${2:-$BIN_DIR/$1}
    [[ -x $bin ]] || return 0
    case $1 in
    etcd) "$bin" --version 2>/dev/null | sed -n 's/^etcd Version: /v/p' || true ;;
    helm) "$bin" version --template '{{.Version}}' 2>/dev/null || true ;;
    kwok) "$bin" --version 2>/dev/null | sed -n -E 's/^kwok version (v[^ ]+) .*/\1/p' || true ;;
    *) "$bin" --version 2>/dev/null | sed -n 's/^Kubernetes //p' || true ;;
    esac
}

want_version() {
    case $1 in
    etcd) echo "$ETCD_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    *) echo "$K8S_VERSION" ;;
    esac
}

# install_binary NAME BUILT: check that BUILT reports the wanted version, then
# move it into bin/ atomically (a half-built or mis-stamped binary never lands).
install_binary() {
    local name=$1 built=$2 got
    got=$(version_of "$name" "$built")
    [[ $got == "$(want_version "$name")" ]] ||
        die "$built was built but reports version '$got', want '$(want_version "$name")'"
    mv -f "$built" "$BIN_DIR/.$name.new"
    mv -f "$BIN_DIR/.$name.new" "$BIN_DIR/$name"
}

# A fresh copy of a committed wrapper module, to be completed by go mod edit.
fresh_wrapper() {
    rm -rf "${SRC_DIR:?}/$1"
    mkdir -p "$SRC_DIR"
    cp -R "$WRAPPERS/$1" "$SRC_DIR/$1"
    echo "$SRC_DIR/$1"
}

K8S_GOMOD=""
# Set K8S_GOMOD to the go.mod of k8s.io/kubernetes@K8S_VERSION (the proxy
# serves that file alone, without the module's source).
resolve_k8s_gomod() {
    [[ -z $K8S_GOMOD ]] || return 0
    K8S_GOMOD=$(capture k8s-gomod "$GO" list -m -f '{{.GoMod}}' "k8s.io/kubernetes@$K8S_VERSION")
    [[ -s $K8S_GOMOD ]] || die "no go.mod for k8s.io/kubernetes@$K8S_VERSION at '$K8S_GOMOD'"
}

# timed LABEL CMD...: run CMD, then report and record how long it took.
timed() {
    local label=$1 started=$SECONDS
    shift
    "$@"
    log "built $label in $(fmt_duration $((SECONDS - started)))"
    echo "$(date -u +%FT%TZ) $label: $((SECONDS - started))s" >>"$OUT_DIR/build-times.log"
}

build_kube() { # build_kube COMPONENT... (kube-apiserver, kube-controller-manager, kube-scheduler)
    local dir gomod modules=() edits=() godebugs=() pkgs=() c m build_date ldflags
    dir=$(fresh_wrapper kube)
    resolve_k8s_gomod
    gomod=$K8S_GOMOD
    # Every k8s.io module that k8s.io/kubernetes replaces with ./staging/...,
    # in either the block form or the one-line `replace a => ./staging/a` form.
    mapfile -t modules < <(sed -n -E \
        's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/.*#\2#p' \
        "$gomod")
    ((${#modules[@]} > 10)) || die "found only ${#modules[@]} staging replaces in $gomod; has its layout changed?"
    log "k8s.io/kubernetes@$K8S_VERSION: replacing ${#modules[@]} staging modules with $STAGING_VERSION"
    edits=("-require=k8s.io/kubernetes@$K8S_VERSION")
    for m in "${modules[@]}"; do edits+=("-replace=$m=$m@$STAGING_VERSION"); done
    mapfile -t godebugs < <(sed -n -E 's#^godebug[[:space:]]+([^[:space:](]+)$#\1#p' "$gomod")
    for m in "${godebugs[@]}"; do edits+=("-godebug=$m"); done
    for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c@$K8S_VERSION"); done

    build_date=$("$GO" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "k8s.io/kubernetes@$K8S_VERSION")
    ldflags="-s -w"
    for m in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $m.gitVersion=$K8S_VERSION -X $m.gitMajor=1 -X $m.gitMinor=$K8S_MINOR"
        ldflags+=" -X $m.gitCommit=unknown -X $m.gitTreeState=clean -X $m.buildDate=$build_date"
    done

    (
        cd "$dir"
        run kube-mod-edit "$GO" mod edit "${edits[@]}"
        run kube-go-get "$GO" get "${pkgs[@]}"
        run kube-build "$GO" build -p 2 -trimpath -ldflags "$ldflags" -o "$dir/out/" "${pkgs[@]%@*}"
    )
    for c in "$@"; do install_binary "$c" "$dir/out/$c"; done
}

build_etcd() {
    local dir
    dir=$(fresh_wrapper etcd)
    (
        cd "$dir"
        run etcd-go-get "$GO" get "go.etcd.io/etcd/server/v3/etcdmain@$ETCD_VERSION"
        run etcd-build "$GO" build -p 2 -trimpath \
            -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$ETCD_VERSION" -o "$dir/out/etcd" .
    )
    install_binary etcd "$dir/out/etcd"
}

build_helm() {
    local dir="$SRC_DIR/helm" v=helm.sh/helm/v3/internal/version
    rm -rf "$dir" && mkdir -p "$dir"
    (
        cd "$dir" # outside any module: `go install pkg@version` uses helm's own go.mod
        run helm-install env GOBIN="$dir/out" "$GO" install -p 2 -trimpath \
            -ldflags "-s -w -X $v.version=$HELM_VERSION -X $v.gitCommit=unknown -X $v.gitTreeState=clean" \
            "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    )
    install_binary helm "$dir/out/helm"
}

# The Stage configs the harness reads, all present (a kwok in bin/ without them is stale).
kwok_stages_present() {
    local f
    for f in "${KWOK_STAGE_FILES[@]}"; do [[ -s $STAGES_DIR/${f#kustomize/stage/} ]] || return 1; done
}

build_kwok() {
    local dir="$SRC_DIR/kwok" moddir f
    rm -rf "$dir" && mkdir -p "$dir"
    (
        cd "$dir" # outside any module, like helm: kwok's own go.mod decides
        # kwok's version is a constant of its source (pkg/consts.Version), so no -X is needed.
        run kwok-install env GOBIN="$dir/out" "$GO" install -p 2 -trimpath -ldflags "-s -w" \
            "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    )
    # The Stage configs ship inside the module that `go install` just downloaded.
    moddir=$(capture kwok-moddir "$GO" mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
        sed -n -E 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')
    [[ -d $moddir ]] || die "no module directory for sigs.k8s.io/kwok@$KWOK_VERSION"
    rm -rf "$STAGES_DIR.new" && mkdir -p "$STAGES_DIR.new"
    for f in "${KWOK_STAGE_FILES[@]}"; do
        [[ -s $moddir/$f ]] || die "sigs.k8s.io/kwok@$KWOK_VERSION has no $f; has its layout changed?"
        mkdir -p "$STAGES_DIR.new/$(dirname "${f#kustomize/stage/}")"
        cp "$moddir/$f" "$STAGES_DIR.new/${f#kustomize/stage/}"
    done
    echo "$KWOK_VERSION" >"$STAGES_DIR.new/VERSION"
    chmod -R u+w "$STAGES_DIR.new" # the module cache is read-only
    rm -rf "$STAGES_DIR" && mv "$STAGES_DIR.new" "$STAGES_DIR"
    install_binary kwok "$dir/out/kwok"
}

main() {
    mkdir -p "$BIN_DIR" "$LOG_DIR"
    exec 9>"$OUT_DIR/.lock"
    if ! flock -n 9; then
        log "another build holds $OUT_DIR/.lock; waiting for it"
        flock 9
    fi

    # What is missing or stale? (Needs no Go: users with prebuilt binaries
    # in the cache never reach the toolchain check below.)
    local missing=() c
    for c in "${components[@]}"; do
        if [[ $c == etcd && -z $ETCD_VERSION ]]; then
            # The etcd version is derived from Kubernetes's go.mod; a cached
            # etcd built by this script was built for this K8S_VERSION dir.
            [[ -n $(version_of etcd) ]] || missing+=(etcd)
            continue
        fi
        if [[ $c == kwok ]] && ! kwok_stages_present; then
            missing+=(kwok)
            continue
        fi
        [[ $(version_of "$c") == "$(want_version "$c")" ]] || missing+=("$c")
    done
    if ((${#missing[@]} == 0)); then
        log "up to date: ${components[*]} ($K8S_VERSION) in $BIN_DIR"
        echo "$BIN_DIR"
        return
    fi

    local go_wanted=${GO:-go}
    GO=$(command -v "$go_wanted" || true)
    if [[ -z $GO && $go_wanted == go && -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; fi
    [[ -n $GO ]] || die "Go is needed to build ${missing[*]} but '$go_wanted' was not found;" \
        "install Go, set GO=/path/to/go, or point KUBEBUILDER_ASSETS at prebuilt binaries"
    export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -buildvcs=false"
    if [[ -z $ETCD_VERSION ]]; then
        resolve_k8s_gomod
        ETCD_VERSION=$(sed -n -E 's#^[[:space:]]*go\.etcd\.io/etcd/server/v3[[:space:]]+(v3\.[0-9.]+)([[:space:]].*)?$#\1#p' "$K8S_GOMOD")
        [[ -n $ETCD_VERSION ]] || die "k8s.io/kubernetes@$K8S_VERSION's go.mod pins no go.etcd.io/etcd/server/v3"
    fi
    log "building ${missing[*]} with $("$GO" version) (Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION, kwok $KWOK_VERSION)"
    log "logs: $LOG_DIR"

    local total_start=$SECONDS kube=()
    for c in "${missing[@]}"; do
        if [[ $c == kube-* ]]; then kube+=("$c"); fi
    done
    if [[ " ${missing[*]} " == *" etcd "* ]]; then timed etcd build_etcd; fi
    if ((${#kube[@]})); then timed "${kube[*]}" build_kube "${kube[@]}"; fi
    if [[ " ${missing[*]} " == *" kwok "* ]]; then timed kwok build_kwok; fi
    if [[ " ${missing[*]} " == *" helm "* ]]; then timed helm build_helm; fi
    log "build took $(fmt_duration $((SECONDS - total_start))); binaries in $BIN_DIR"
    echo "$(date -u +%FT%TZ) total ${missing[*]}: $((SECONDS - total_start))s" >>"$OUT_DIR/build-times.log"
    echo "$BIN_DIR"
}

main
