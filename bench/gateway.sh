#!/usr/bin/env bash
# bench/gateway.sh: what the gateway costs.
#
# Builds gatehouse and bench/loadgen, starts a trivial upstream and gatehouse
# (fresh data directory, realm bench/realms/gateway.json) on loopback, gets
# a token with a password grant, and measures from a separate loadgen
# process, in one run and in two layouts of the machine's cores:
#
#   shared  the load generator, the upstream and gatehouse all share every
#           core (the proxy hop's socket work competes with the upstream's
#           own and with the generator's);
#   pinned  gatehouse on cores of its own, the upstream and the load
#           generator together on core 0 (as deployed, where a gateway has
#           its own cores or machine). Needs 2 cores.
#
# Every process is started under taskset, so that its runtime (GOMAXPROCS,
# nginx workers) is sized to the cores it is given.
#
# In each layout:
#   1. closed loop, the same connections: requests/s straight to the
#      upstream and through the gateway (token check, scope from a role,
#      organization membership, proxy), alternating for ROUNDS rounds;
#      medians and their ratio. Also, as references, through bench/goproxy
#      (the standard library's httputil.ReverseProxy, no token check) and,
#      when nginx is installed, a plain nginx proxy_pass with upstream
#      keep-alive: what a proxy hop alone costs on this machine, in Go and
#      in C;
#   2. open loop at half the gateway's throughput: p50 and p99 latency
#      straight to the upstream and through the gateway (medians of
#      ROUNDS), and the difference (what the gateway adds); and per round,
#      how many 10 ms windows the slowest 1 % of requests were due in
#      (loadgen's p99_windows): a handful means one pause set the p99.
#
# Environment: DUR (measured duration, default 10s), WARMUP (2s), CONNS
# (closed-loop connections, 16), ROUNDS (3), LAYOUTS ("shared pinned"),
# GH_PORT (18080), UP_PORT (18081), NGINX_PORT (GH_PORT+2), GOPROXY_PORT
# (GH_PORT+3).
# Everything shares the machine: look at the spread between rounds.
set -euo pipefail

cd "$(dirname "$0")/.."
DUR=${DUR:-10s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-16}
ROUNDS=${ROUNDS:-3}
LAYOUTS=${LAYOUTS:-shared pinned}
GH_PORT=${GH_PORT:-18080}
UP_PORT=${UP_PORT:-18081}
NGINX_PORT=${NGINX_PORT:-$((GH_PORT + 2))}
GOPROXY_PORT=${GOPROXY_PORT:-$((GH_PORT + 3))}
GP="http://127.0.0.1:$GOPROXY_PORT"
GH="http://127.0.0.1:$GH_PORT"
UP="http://127.0.0.1:$UP_PORT"

work=$(mktemp -d)
pids=()
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
}
cleanup() {
	stop_all
	rm -rf "$work"
}
trap cleanup EXIT

echo "building gatehouse, loadgen and the upstream ..." >&2
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/upstream-bin" ./bench/upstream
go build -o "$work/goproxy" ./bench/goproxy

sed "s#http://127.0.0.1:18081#$UP#" bench/realms/gateway.json >"$work/gateway.json"

# nginx, when installed: a bare reverse proxy with pooled upstream
# connections, the cheapest separate hop there is.
NG=""
if command -v nginx >/dev/null 2>&1; then
	NG="http://127.0.0.1:$NGINX_PORT"
fi
write_nginx_conf() { # workers
	mkdir -p "$work/nginx"
	cat >"$work/nginx/nginx.conf" <<EOF
worker_processes $1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
}

# start_all UP_CPUS GW_CPUS: the upstream, gatehouse and nginx, each
# started under taskset so that its runtime (GOMAXPROCS, nginx workers)
# is sized to the cores it has, as it would be on a machine of its own.
start_all() {
	local upc=$1 gwc=$2
	taskset -c "$upc" "$work/upstream-bin" -addr "127.0.0.1:$UP_PORT" &
	pids+=($!)
	taskset -c "$gwc" "$work/gatehouse" serve --addr "127.0.0.1:$GH_PORT" --data "$work/data" --no-demo \
		--default-realm bench --import-realm "$work/gateway.json" --log-level warn >>"$work/gatehouse.log" 2>&1 &
	pids+=($!)
	taskset -c "$gwc" "$work/goproxy" -addr "127.0.0.1:$GOPROXY_PORT" -upstream "$UP" &
	pids+=($!)
	if [ -n "$NG" ]; then
		write_nginx_conf "$(taskset -c "$gwc" nproc)"
		taskset -c "$gwc" nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>/dev/null &
		pids+=($!)
	fi
	for _ in $(seq 100); do
		if curl -fsS "$GH/health/ready" >/dev/null 2>&1 && curl -fsS "$UP/" >/dev/null 2>&1 && curl -fsS "$GP/" >/dev/null 2>&1; then
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
}

# load URL [loadgen flags...]: one loadgen run, its JSON on stdout. A run
# with failed requests stops the script: its numbers would mean nothing.
# The load generator runs on LG_CPUS.
load() {
	local url=$1
	shift
	taskset -c "$LG_CPUS" "$work/loadgen" -scenario get -url "$url" -path /hello -header "Authorization: Bearer $token" \
		-duration "$DUR" -warmup "$WARMUP" "$@"
}

# median of the numbers on stdin, one per line.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "machine: $(nproc) cores, $(uname -sr), $(go version | cut -d' ' -f3)"
last=$(($(nproc) - 1))
for layout in $LAYOUTS; do
	case $layout in
	shared)
		LG_CPUS="0-$last"
		start_all "0-$last" "0-$last"
		;;
	pinned)
		if [ "$last" -lt 1 ]; then
			echo "[pinned] skipped: needs 2 cores"
			continue
		fi
		LG_CPUS=0
		start_all 0 "1-$last"
		;;
	*)
		echo "unknown layout $layout" >&2
		exit 1
		;;
	esac
	echo "[$layout] 1. closed loop, -c $CONNS, $DUR each, $ROUNDS rounds" >&2
	d=() g=() n=() q=()
	for _ in $(seq "$ROUNDS"); do
		d+=("$(load "$UP" -c "$CONNS" | jq .throughput_rps)")
		g+=("$(load "$GH" -c "$CONNS" | jq .throughput_rps)")
		if [ -n "$NG" ]; then n+=("$(load "$NG" -c "$CONNS" | jq .throughput_rps)"); fi
		q+=("$(load "$GP" -c "$CONNS" | jq .throughput_rps)")
	done
	rps_direct=$(printf '%s\n' "${d[@]}" | median)
	rps_gw=$(printf '%s\n' "${g[@]}" | median)
	rps_gp=$(printf '%s\n' "${q[@]}" | median)
	rps_ng=""
	if [ -n "$NG" ]; then rps_ng=$(printf '%s\n' "${n[@]}" | median); fi
	rate=$(awk -v r="$rps_gw" 'BEGIN { printf "%d", r / 2 }')

	echo "[$layout] 2. open loop at $rate requests/s (half the gateway's throughput), $DUR each, $ROUNDS rounds" >&2
	pd=() pg=() md=() mg=() pn=() pq=() wd=() wg=()
	for _ in $(seq "$ROUNDS"); do
		o=$(load "$UP" -c "$CONNS" -rate "$rate")
		pd+=("$(jq .p99_ms <<<"$o")")
		md+=("$(jq .p50_ms <<<"$o")")
		wd+=("$(jq .p99_windows <<<"$o")")
		o=$(load "$GH" -c "$CONNS" -rate "$rate")
		pg+=("$(jq .p99_ms <<<"$o")")
		mg+=("$(jq .p50_ms <<<"$o")")
		wg+=("$(jq .p99_windows <<<"$o")")
		if [ -n "$NG" ]; then pn+=("$(load "$NG" -c "$CONNS" -rate "$rate" | jq .p99_ms)"); fi
		pq+=("$(load "$GP" -c "$CONNS" -rate "$rate" | jq .p99_ms)")
	done
	pn_med=""
	if [ -n "$NG" ]; then pn_med=$(printf '%s\n' "${pn[@]}" | median); fi

	awk -v l="$layout" -v rd="$rps_direct" -v rg="$rps_gw" -v rn="$rps_ng" -v rq="$rps_gp" -v rate="$rate" -v rounds="$ROUNDS" \
		-v dall="${d[*]}" -v gall="${g[*]}" -v pall="${pg[*]}" -v uall="${pd[*]}" -v wdall="${wd[*]}" -v wgall="${wg[*]}" \
		-v pd="$(printf '%s\n' "${pd[@]}" | median)" -v pg="$(printf '%s\n' "${pg[@]}" | median)" \
		-v md="$(printf '%s\n' "${md[@]}" | median)" -v mg="$(printf '%s\n' "${mg[@]}" | median)" \
		-v pn="$pn_med" -v pq="$(printf '%s\n' "${pq[@]}" | median)" 'BEGIN {
		printf "[%s] throughput, median of %d: upstream %.0f req/s, gateway %.0f req/s, ratio %.0f%% (target >= 70%%)\n", l, rounds, rd, rg, 100 * rg / rd
		printf "[%s]   rounds (req/s): upstream %s; gateway %s\n", l, dall, gall
		printf "[%s]   reference: Go httputil.ReverseProxy (bench/goproxy), no token check: %.0f req/s = %.0f%% of upstream\n", l, rq, 100 * rq / rd
		if (rn != "") printf "[%s]   reference: nginx proxy_pass, no token check: %.0f req/s = %.0f%% of upstream\n", l, rn, 100 * rn / rd
		printf "[%s] at %d req/s, p50: upstream %.3f ms, gateway %.3f ms, added %.3f ms\n", l, rate, md, mg, mg - md
		printf "[%s] at %d req/s, p99: upstream %.3f ms, gateway %.3f ms, added %.3f ms (target < 1 ms)\n", l, rate, pd, pg, pg - pd
		printf "[%s]   rounds (p99 ms): upstream %s; gateway %s\n", l, uall, pall
		printf "[%s]   rounds (10 ms windows the slowest 1 %% were due in; few = a pause set the p99): upstream %s; gateway %s\n", l, wdall, wgall
		printf "[%s]   reference p99: Go httputil.ReverseProxy %.3f ms (added %.3f ms)\n", l, pq, pq - pd
		if (pn != "") printf "[%s]   reference p99: nginx proxy_pass %.3f ms (added %.3f ms)\n", l, pn, pn - pd
	}'
	stop_all
done
