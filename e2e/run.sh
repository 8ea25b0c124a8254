#!/usr/bin/env bash
# End-to-end tests on real local components (see e2e/README.md): installs the pinned
# tools into a cache outside the module, builds bootstrap for this machine, runs the
# harness. Every server listens on 127.0.0.1 and is stopped on every exit path.
# Arguments go to the harness, e.g.: bash e2e/run.sh -run '5-|7b' -keep
set -euo pipefail
cd "$(dirname "$0")/.."

RIE_MOD=github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
VERSITYGW_MOD=github.com/versity/versitygw/cmd/versitygw
VERSITYGW_VERSION=v1.8.0
GOFLOW2_MOD=github.com/netsampler/goflow2/v2/cmd/goflow2
GOFLOW2_VERSION=v2.2.6

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vpcflow-ipfix-e2e-run.XXXXXX")
harness_pid=
cleanup() {
	# The harness stops its servers itself; this is for a run.sh killed from outside.
	if [[ -n "$harness_pid" ]] && kill -0 "$harness_pid" 2>/dev/null; then
		kill -TERM "$harness_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$harness_pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$harness_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The tool cache survives between runs where the machine allows; a cache that cannot be
# created or written falls back to a fresh directory (slower, never a failure).
cache=${E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vpcflow-ipfix-e2e}
if ! mkdir -p "$cache/bin" 2>/dev/null || ! touch "$cache/bin/.writable" 2>/dev/null; then
	echo "e2e: cache $cache not writable; installing into $tmp/bin"
	cache=$tmp
	mkdir -p "$cache/bin"
fi
bin=$cache/bin

# install NAME MODULE VERSION: go install into the cache unless that version is there.
# Run outside the module so go.mod and go.sum are never touched.
install() {
	local name=$1 mod=$2 version=$3
	if [[ -x "$bin/$name" && "$(cat "$bin/$name.version" 2>/dev/null)" == "$version" ]]; then
		return 0
	fi
	local start=$SECONDS
	echo "e2e: installing $name $version (versitygw takes minutes the first time)"
	if ! (cd "$tmp" && GOBIN="$bin" GOFLAGS=-mod=mod GOWORK=off go install "$mod@$version") >"$tmp/install-$name.log" 2>&1; then
		echo "e2e: installing $name failed:"
		tail -n 30 "$tmp/install-$name.log"
		return 1
	fi
	echo "$version" >"$bin/$name.version"
	echo "e2e: installed $name in $((SECONDS - start)) s"
}

# The three installs in parallel, each bounded; progress every 30 s for the slow one.
pids=()
install aws-lambda-rie "$RIE_MOD" "$RIE_VERSION" & pids+=($!)
install goflow2 "$GOFLOW2_MOD" "$GOFLOW2_VERSION" & pids+=($!)
install versitygw "$VERSITYGW_MOD" "$VERSITYGW_VERSION" & pids+=($!)
waited=0
while :; do
	running=0
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
	((running)) || break
	if ((waited >= 1200)); then echo "e2e: tool installation took over 20 minutes; giving up"; exit 1; fi
	sleep 1
	waited=$((waited + 1))
	((waited % 30 == 0)) && echo "e2e: still installing tools (${waited} s)"
done
for p in "${pids[@]}"; do wait "$p" || { echo "e2e: a tool failed to install"; exit 1; }; done

echo "e2e: building bootstrap for $(go env GOOS)/$(go env GOARCH) and the harness"
CGO_ENABLED=0 go build -tags lambda.norpc -o "$tmp/bootstrap" ./lambda
go build -o "$tmp/e2e" ./e2e

# The harness bounds itself (-timeout); timeout(1) is the backstop if it hangs.
timeout --kill-after=30s 570s "$tmp/e2e" -bin "$bin" -bootstrap "$tmp/bootstrap" "$@" &
harness_pid=$!
status=0
wait "$harness_pid" || status=$?
harness_pid=
exit "$status"
