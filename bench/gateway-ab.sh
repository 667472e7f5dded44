#!/usr/bin/env bash
# bench/gateway-ab.sh: two gatehouse builds through the same gateway
# benchmark, interleaved round by round, so that a machine whose speed
# drifts moves both alike. Use it to tell whether a change to the gateway
# made it faster.
#
#   bench/gateway-ab.sh REV_A [REV_B]     # git revisions; B defaults to the working tree
#
# Both builds run pinned to the last core, the upstream and the load
# generator to core 0 (bench/gateway.sh's pinned layout). Each round runs
# the upstream directly, then A, then B, closed loop; with RATE set, the
# same again open loop at RATE req/s for p99.
#
# Environment: ROUNDS (5), DUR (4s), CONNS (16), RATE (unset: no open loop).
set -euo pipefail

cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 REV_A [REV_B]" >&2; exit 2; }
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-4s}
CONNS=${CONNS:-16}
RATE=${RATE:-}
UP_PORT=18481 A_PORT=18482 B_PORT=18483

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	git worktree remove --force "$work/a" 2>/dev/null || true
	[ -d "$work/b" ] && git worktree remove --force "$work/b" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

build() { # REV OUT
	git worktree add -q --detach "$work/$2" "$1"
	(cd "$work/$2" && go build -o "$work/$2.bin" ./cmd/gatehouse)
}
echo "building $1 and ${2:-the working tree} ..." >&2
build "$1" a
if [ $# -ge 2 ]; then build "$2" b; else go build -o "$work/b.bin" ./cmd/gatehouse; fi
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/upstream" ./bench/upstream
sed "s#http://127.0.0.1:18081#http://127.0.0.1:$UP_PORT#" bench/realms/gateway.json >"$work/gateway.json"

last=$(($(nproc) - 1))
[ "$last" -ge 1 ] || { echo "needs 2 cores" >&2; exit 1; }
taskset -c 0 "$work/upstream" -addr "127.0.0.1:$UP_PORT" &
pids+=($!)
for side in a b; do
	port=$A_PORT
	[ $side = b ] && port=$B_PORT
	taskset -c "1-$last" "$work/$side.bin" serve --addr "127.0.0.1:$port" --data "$work/data-$side" --no-demo \
		--default-realm bench --import-realm "$work/gateway.json" --log-level warn >"$work/$side.log" 2>&1 &
	pids+=($!)
done
for port in $A_PORT $B_PORT; do
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
		sleep 0.1
	done
done
token() {
	curl -fsS "http://127.0.0.1:$1/realms/bench/protocol/openid-connect/token" \
		-d grant_type=password -d client_id=bench-cli -d username=bench -d password=bench-pw-1 | jq -r .access_token
}
ta=$(token $A_PORT)
tb=$(token $B_PORT)
load() { # PORT TOKEN [loadgen flags]
	taskset -c 0 "$work/loadgen" -scenario get -url "http://127.0.0.1:$1" -path /hello -header "Authorization: Bearer $2" \
		-c "$CONNS" -duration "$DUR" -warmup 1s "${@:3}" 2>/dev/null
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); A = $1, B = ${2:-working tree}"
for r in $(seq "$ROUNDS"); do
	u=$(load $UP_PORT - | jq .throughput_rps)
	a=$(load $A_PORT "$ta" | jq .throughput_rps)
	b=$(load $B_PORT "$tb" | jq .throughput_rps)
	awk -v r="$r" -v u="$u" -v a="$a" -v b="$b" 'BEGIN {
		printf "round %d: upstream %.0f req/s; A %.0f (%.2f of upstream); B %.0f (%.2f); B/A %.2f\n", r, u, a, a / u, b, b / u, b / a }'
done
if [ -n "$RATE" ]; then
	for r in $(seq "$ROUNDS"); do
		u=$(load $UP_PORT - -rate "$RATE" | jq .p99_ms)
		a=$(load $A_PORT "$ta" -rate "$RATE" | jq .p99_ms)
		b=$(load $B_PORT "$tb" -rate "$RATE" | jq .p99_ms)
		awk -v r="$r" -v rate="$RATE" -v u="$u" -v a="$a" -v b="$b" 'BEGIN {
			printf "round %d at %d req/s, p99: upstream %.2f ms; A adds %+.2f ms; B adds %+.2f ms\n", r, rate, u, a - u, b - u }'
	done
fi
