#!/usr/bin/env bash
# bench/gateway.sh: what the gateway costs.
#
# Builds gatehouse and bench/loadgen, starts a trivial upstream and gatehouse
# (fresh data directory, realm bench/realms/gateway.json) on loopback, gets
# a token with a password grant, and measures from a separate loadgen
# process, in one run:
#   1. closed loop, the same connections: requests/s straight to the
#      upstream and through the gateway (token check, scope from a role,
#      organization membership, proxy); prints the ratio;
#   2. open loop at half the gateway's throughput: p99 latency straight to
#      the upstream and through the gateway; prints the difference (what
#      the gateway adds).
#
# Environment: DUR (measured duration, default 10s), WARMUP (2s), CONNS
# (closed-loop connections, 16), GH_PORT (18080), UP_PORT (18081).
# Everything shares the machine: run it a few times and look at the spread.
set -euo pipefail

cd "$(dirname "$0")/.."
DUR=${DUR:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-16}
GH_PORT=${GH_PORT:-18080}
UP_PORT=${UP_PORT:-18081}
GH="http://127.0.0.1:$GH_PORT"
UP="http://127.0.0.1:$UP_PORT"

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "building gatehouse, loadgen and the upstream ..." >&2
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/upstream-bin" ./bench/upstream

sed "s#http://127.0.0.1:18081#$UP#" bench/realms/gateway.json >"$work/gateway.json"

"$work/upstream-bin" -addr "127.0.0.1:$UP_PORT" &
pids+=($!)
"$work/gatehouse" serve --addr "127.0.0.1:$GH_PORT" --data "$work/data" --no-demo \
	--default-realm bench --import-realm "$work/gateway.json" --log-level warn >"$work/gatehouse.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
	if curl -fsS "$GH/health/ready" >/dev/null 2>&1 && curl -fsS "$UP/" >/dev/null 2>&1; then
		break
	fi
	sleep 0.1
done
curl -fsS "$GH/health/ready" >/dev/null || { cat "$work/gatehouse.log" >&2; exit 1; }

token=$(curl -fsS "$GH/realms/bench/protocol/openid-connect/token" \
	-d grant_type=password -d client_id=bench-cli -d username=bench -d password=bench-pw-1 | jq -r .access_token)
[ -n "$token" ] && [ "$token" != null ] || { echo "no token" >&2; exit 1; }
# The gateway must answer 200 before anything is measured.
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$GH/hello")
[ "$code" = 200 ] || { echo "gateway answered $code to GET /hello" >&2; cat "$work/gatehouse.log" >&2; exit 1; }

# load URL [loadgen flags...]: one loadgen run, its JSON on stdout. A run
# with failed requests stops the script: its numbers would mean nothing.
load() {
	local url=$1
	shift
	"$work/loadgen" -scenario get -url "$url" -path /hello -header "Authorization: Bearer $token" \
		-duration "$DUR" -warmup "$WARMUP" "$@"
}

echo "machine: $(nproc) cores, $(uname -sr), $(go version | cut -d' ' -f3)" >&2
echo "1. closed loop, -c $CONNS, $DUR each" >&2
direct=$(load "$UP" -c "$CONNS")
via=$(load "$GH" -c "$CONNS")
rps_direct=$(jq .throughput_rps <<<"$direct")
rps_gw=$(jq .throughput_rps <<<"$via")
rate=$(awk -v r="$rps_gw" 'BEGIN { printf "%d", r / 2 }')

echo "2. open loop at $rate requests/s (half the gateway's throughput), $DUR each" >&2
odirect=$(load "$UP" -c "$CONNS" -rate "$rate")
ovia=$(load "$GH" -c "$CONNS" -rate "$rate")

awk -v rd="$rps_direct" -v rg="$rps_gw" -v rate="$rate" \
	-v pd="$(jq .p99_ms <<<"$odirect")" -v pg="$(jq .p99_ms <<<"$ovia")" \
	-v md="$(jq .p50_ms <<<"$odirect")" -v mg="$(jq .p50_ms <<<"$ovia")" 'BEGIN {
	printf "throughput   upstream %8.0f req/s   gateway %8.0f req/s   ratio %.0f%% (target >= 70%%)\n", rd, rg, 100 * rg / rd
	printf "at %d req/s  p50 upstream %.3f ms  gateway %.3f ms  added %.3f ms\n", rate, md, mg, mg - md
	printf "at %d req/s  p99 upstream %.3f ms  gateway %.3f ms  added %.3f ms (target < 1 ms)\n", rate, pd, pg, pg - pd
}'
