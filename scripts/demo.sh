#!/usr/bin/env bash
# make demo: replay the sample flow log objects through the real pipeline (the same code
# the Lambda runs) to the built-in debug collector on loopback, and show what arrives.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=dist/local/bootstrap
mkdir -p dist/local
CGO_ENABLED=0 go build -trimpath -o "$bin" ./lambda

work=$(mktemp -d)
collector_pid=
cleanup() {
	[ -n "$collector_pid" ] && kill "$collector_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# The collector picks a free port on 127.0.0.1 and says which on its first line.
"$bin" collect --listen 127.0.0.1:0 --idle 3s >"$work/flows.json" 2>"$work/collector.log" &
collector_pid=$!
for _ in $(seq 100); do
	grep -q listening "$work/collector.log" 2>/dev/null && break
	sleep 0.05
done
addr=$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$work/collector.log" | head -1)
[ -n "$addr" ] || { echo "collector did not start"; cat "$work/collector.log"; exit 1; }

echo "== replaying events/sample-default.log.gz and events/sample-custom.log.gz to $addr at 1000 flows/s"
"$bin" replay --collector "$addr" --eps 1000 events/sample-default.log.gz events/sample-custom.log.gz >"$work/summary.json" 2>"$work/replay.log" || status=$?
wait "$collector_pid" || true
collector_pid=

echo
echo "== flows decoded by the debug collector (first 10 of $(wc -l <"$work/flows.json"))"
head -10 "$work/flows.json"
echo
echo "== malformed lines the forwarder skipped (logged with object and line number)"
grep -h '"malformed line skipped"' "$work/replay.log" || echo "(none)"
echo
echo "== collector summary (sequence gaps must be 0)"
tail -1 "$work/collector.log"
echo
echo "== replay summary"
cat "$work/summary.json"
exit "${status:-0}"
