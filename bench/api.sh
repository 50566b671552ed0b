#!/usr/bin/env bash
# API latency under load: GET /api/v1/runs?limit=50 against `sluice server`
# on loopback (HTTPS, the generated certificate) over a state directory
# holding 100,000 runs, authenticated with an API token.
#   1. paced: wrk with 20 connections each waiting 20 ms between requests,
#      about 1,000 requests/s — p50/p90/p99 latency against the target;
#   2. a deep page: the same request with a cursor half-way through the
#      history (keyset paging: it must cost what the first page costs);
#   3. saturation: as fast as 16 connections go — requests/s;
#   4. cases 1 and 3 again with a session secret as the bearer instead of
#      the API token: a token's successful use is recorded at most once a
#      minute, as a session's is, so this shows that token and session
#      requests cost the same.
# wrk2 (constant rate with coordinated-omission correction) is not
# available, so the pacing is wrk's per-request delay(): latency excludes
# the delay, and a slow response delays that connection's next request.
# Usage: bench/api.sh            (RUNS=100000 DURATION=20 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-100000}
DURATION=${DURATION:-20}
WRK=${WRK:-/usr/bin/wrk}
work=$(mktemp -d /tmp/sluice-apibench.XXXXXX)
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/sluice" ./cmd/sluice # as `make build` builds it
go build -o "$work/apiseed" ./bench/apiseed

t0=$EPOCHREALTIME
"$work/apiseed" -home "$work/home" -runs "$RUNS" >"$work/secrets"
t1=$EPOCHREALTIME
token=$(sed -n 1p "$work/secrets")
session=$(sed -n 2p "$work/secrets")
printf 'seeded %d runs in %.1f s\n' "$RUNS" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="https://127.0.0.1:$port"
"$work/sluice" --home "$work/home" server --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
	curl -skf "$base/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -skf "$base/readyz" >/dev/null || { cat "$work/server.log"; exit 1; }

# The first page must be the newest runs, 50 of them.
n=$(curl -skf -H "Authorization: Bearer $token" "$base/api/v1/runs?limit=50" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')
[ "$n" = 50 ] || { echo "GET /api/v1/runs returned $n runs, want 50"; exit 1; }

cat >"$work/bench.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
local pace = tonumber(os.getenv("BENCH_PACE_MS") or "0")
function delay() return pace end
LUA

# run_wrk LABEL PACE_MS CONNECTIONS SECONDS URL [BEARER]: prints one
# result line.
run_wrk() {
	local out
	out=$(BENCH_TOKEN=${6:-$token} BENCH_PACE_MS=$2 "$WRK" -t2 -c"$3" -d"$4s" --latency -s "$work/bench.lua" "$5")
	if grep -q "Non-2xx" <<<"$out"; then echo "$out"; echo "error responses: see above"; exit 1; fi
	awk -v label="$1" '
		/^ +50%/ { p50 = $2 } /^ +90%/ { p90 = $2 } /^ +99%/ { p99 = $2 }
		/^Requests\/sec:/ { rps = $2 }
		END { printf "%-34s %10s %10s %10s %12s\n", label, p50, p90, p99, rps }' <<<"$out"
}

# A cursor half-way through the history, as the API encodes one: the
# (created_at in microseconds, id) of the run before the page.
half=$((RUNS / 2))
mid=$(python3 -c "
import base64, datetime, json
at = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(minutes=5 * $half)
key = {'t': int(at.timestamp()) * 1000000, 'id': at.strftime('%Y%m%dT%H%M%SZ') + '-%06d' % $half}
print(base64.urlsafe_b64encode(json.dumps(key, separators=(',', ':')).encode()).decode().rstrip('='))")

run_wrk warm-up 0 8 3 "$base/api/v1/runs?limit=50" >/dev/null
echo "== GET /api/v1/runs?limit=50, $RUNS runs in the store"
printf '%-34s %10s %10s %10s %12s\n' case p50 p90 p99 "requests/s"
# 20 connections, each pausing 18 ms after a response of ~2 ms: ~1,000/s.
run_wrk "token, paced ~1000/s, first page" 18 20 "$DURATION" "$base/api/v1/runs?limit=50"
run_wrk "token, paced ~1000/s, page at $half" 18 20 10 "$base/api/v1/runs?limit=50&cursor=$mid"
run_wrk "token, saturation (16 conns)" 0 16 10 "$base/api/v1/runs?limit=50"
run_wrk "session, paced ~1000/s, first page" 18 20 "$DURATION" "$base/api/v1/runs?limit=50" "$session"
run_wrk "session, saturation (16 conns)" 0 16 10 "$base/api/v1/runs?limit=50" "$session"
echo "target: p99 < 20 ms at 1,000 requests/s"
