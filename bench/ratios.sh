#!/usr/bin/env bash
# bench/ratios.sh: the token-endpoint ratios of issue-style targets, measured
# interleaved so that a machine whose speed drifts (a shared VM) moves the
# limit and the scenario together.
#
# Builds gatehouse, loadgen and limits, starts gatehouse on loopback with a
# fresh data directory and its demo realm, then ROUNDS times, one after the
# other: bare argon2id verifications/s, a password-grant run, bare RSA-2048
# signatures/s, a refresh run and a client_credentials run. Each round's
# ratio divides a scenario by the limit measured next to it; the medians
# of the rounds are the figures to quote.
#
#   password            ÷ argon2id verify (same parameters: Keycloak's)
#   refresh             ÷ RSA-2048 sign   (one signature and one durable
#                                          session write per grant)
#   client_credentials  ÷ RSA-2048 sign
#
# Environment: ROUNDS (5), DUR (5s), WARMUP (1s), CONNS (4), PORT (18280).
# docs/benchmarks.md (bench/run) has the full picture; this is the quick,
# drift-resistant check.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-5s}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-4}
PORT=${PORT:-18280}
URL="http://127.0.0.1:$PORT"

work=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "building gatehouse, loadgen and limits ..." >&2
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/limits" ./bench/limits

"$work/gatehouse" serve --addr "127.0.0.1:$PORT" --data "$work/data" --log-level info >"$work/gatehouse.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	curl -fsS "$URL/health/ready" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "$URL/health/ready" >/dev/null || { cat "$work/gatehouse.log" >&2; exit 1; }
# The demo realm's generated credentials, from the start-up instructions.
pw=$(grep -o 'username=demo -d password=[^ ]*' "$work/gatehouse.log" | head -1 | sed 's/.*password=//')
secret=$(grep -o 'client_id=demo-service -d client_secret=[^ ]*' "$work/gatehouse.log" | head -1 | sed 's/.*client_secret=//')
[ -n "$pw" ] && [ -n "$secret" ] || { echo "demo credentials not found in the log" >&2; exit 1; }

# The generator drives a few thousand requests a second at most: one
# scheduler is enough and leaves more of the machine to the server.
load() {
	GOMAXPROCS=1 "$work/loadgen" -url "$URL" -realm demo -c "$CONNS" -duration "$DUR" -warmup "$WARMUP" "$@" | jq .throughput_rps
}
limit() {
	"$work/limits" -only "$1" -duration "$DUR" | jq ".${1}_per_s"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3)"
pr=() rr=() cr=()
for r in $(seq "$ROUNDS"); do
	a=$(limit argon2id_verify)
	p=$(load -scenario password -client-id demo-app -username demo -password "$pw")
	s=$(limit rsa2048_sign)
	f=$(load -scenario refresh -client-id demo-app -username demo -password "$pw")
	c=$(load -scenario client_credentials -client-id demo-service -client-secret "$secret")
	pr+=("$(awk -v x="$p" -v y="$a" 'BEGIN { printf "%.3f", x / y }')")
	rr+=("$(awk -v x="$f" -v y="$s" 'BEGIN { printf "%.3f", x / y }')")
	cr+=("$(awk -v x="$c" -v y="$s" 'BEGIN { printf "%.3f", x / y }')")
	printf 'round %d: argon2id %s/s, password %s/s (%s); RSA sign %s/s, refresh %s/s (%s), client_credentials %s/s (%s)\n' \
		"$r" "$a" "$p" "${pr[-1]}" "$s" "$f" "${rr[-1]}" "$c" "${cr[-1]}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "median of $ROUNDS rounds: password ÷ argon2id $(median "${pr[@]}") (target >= 0.90); refresh ÷ RSA sign $(median "${rr[@]}") (target >= 0.70); client_credentials ÷ RSA sign $(median "${cr[@]}") (target >= 0.80)"
