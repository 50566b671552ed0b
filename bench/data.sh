#!/usr/bin/env bash
# Data-movement benchmarks, side by side in one run, through the real
# binary (every dataset sluice stores encrypted, every state change durable):
#   csv_filter_csv      CSV → filter → CSV                    target ≥ 1M records/s
#   csv_to_parquet      CSV → cast + filter + derive → Parquet
#   jsonl_sha256        JSONL → derive sha256(email) → JSONL  target ≥ 2× the naive Go program
#   naive_go_jsonl      the naive Go program doing the same   (decode into a map, hash, encode)
#   postgres_copy_load  CSV → PostgreSQL (COPY)
#   postgres_read       PostgreSQL (cursor) → CSV
#   gates_off / gates_on  CSV → CSV without and with the privacy and quality
#                       gates (3 declared PII columns checked at the sink,
#                       4 operators, 6 checks)          target: gates ≤ 2× slower
# The generated records are personal data, so every load but gates_on is
# classified restricted: the guard at the exit lets raw personal data into
# restricted destinations only.
# Usage: bench/data.sh              (N=1000000; N=10000000 for the memory check)
#        CASES="csv_to_parquet" bench/data.sh   runs only the cases named
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
CASES=${CASES:-}
want() { [[ -z $CASES || " $CASES " == *" $1 "* ]]; } # is case $1 selected?
PG=${PG:-postgres://postgres@127.0.0.1:5432/test}
work=$(mktemp -d /tmp/sluice-data.XXXXXX)
trap 'rm -rf "$work"; psql "$PG" -qc "DROP TABLE IF EXISTS bench_customers" >/dev/null 2>&1 || true' EXIT

CGO_ENABLED=0 go build -o "$work/sluice" ./cmd/sluice # as `make build` builds it
go build -o "$work/gen" ./bench/gen
go build -o "$work/naive" ./bench/naive
"$work/gen" -n "$N" -o "$work/customers.csv"
if want jsonl_sha256 || want naive_go_jsonl; then
	"$work/gen" -n "$N" -format jsonl -o "$work/customers.jsonl"
fi

pipe() { # name, then the YAML of its tasks on stdin
	{ echo "pipeline: $1"; echo "tasks:"; cat; } >"$work/$1.yaml"
}
pipe csv_filter_csv <<'YAML'
  t:
    extract: {csv: {path: customers.csv}}
    transform:
      - filter: "row.country in ['DE', 'FR', 'US']"
    load: {csv: {path: out_filter.csv}, classification: restricted}
YAML
pipe csv_to_parquet <<'YAML'
  t:
    extract: {csv: {path: customers.csv}}
    transform:
      - cast: {id: int, age: int, monthly_spend: float, signup_date: timestamp}
      - filter: "row.country in ['DE', 'FR', 'US'] && row.age >= 18"
      - derive: {full_name: "row.first_name + ' ' + row.last_name", yearly_spend: "row.monthly_spend * 12.0"}
    load: {parquet: {path: out.parquet}, classification: restricted}
YAML
pipe jsonl_sha256 <<'YAML'
  t:
    extract: {jsonl: {path: customers.jsonl}}
    transform:
      - derive: {email_sha256: "sha256(row.email)"}
    load: {jsonl: {path: out_sha.jsonl}, classification: restricted}
YAML
pipe postgres_copy_load <<YAML
  t:
    extract: {csv: {path: customers.csv}}
    transform:
      - cast: {id: int, age: int, monthly_spend: float, signup_date: timestamp}
    load: {postgres: {dsn: "$PG", table: bench_customers, mode: replace, create: true}, classification: restricted}
YAML
pipe postgres_read <<YAML
  t:
    extract: {postgres: {dsn: "$PG", query: "SELECT * FROM bench_customers"}}
    load: {csv: {path: out_pg.csv}, classification: restricted}
YAML

pipe gates_off <<'YAML'
  t:
    extract: {csv: {path: customers.csv}}
    transform:
      - cast: {id: int, age: int, monthly_spend: float, signup_date: timestamp}
    load:
      csv: {path: out_gates_off.csv}
      classification: restricted
YAML
pipe gates_on <<'YAML'
  t:
    extract: {csv: {path: customers.csv}}
    pii_columns: {email: email, first_name: person_name, last_name: person_name}
    transform:
      - cast: {id: int, age: int, monthly_spend: float, signup_date: timestamp}
      - check:
          columns:
            id: [not_null, unique]
            email: {regex: "^[^@]+@[^@]+$"}
            country: {accepted_values: [DE, FR, US, GB, ES, NL, IT, PL]}
            age: {range: {min: 0, max: 130}}
            plan: {accepted_values: [free, pro, team, enterprise]}
      - pii:
          email: hmac
          first_name: {mask: {keep_first: 1}}
          last_name: tokenize
          signup_date: {generalize: month}
    load: {csv: {path: out_gates_on.csv}}
YAML

# run NAME CMD...: prints "NAME seconds records/s peakRSS_MB".
run() {
	local name=$1
	shift
	local t0=$EPOCHREALTIME
	/usr/bin/time -f "%M" -o "$work/time" "$@" >"$work/out" 2>&1 || { cat "$work/out"; exit 1; }
	local t1=$EPOCHREALTIME
	awk -v n="$name" -v a="$t0" -v b="$t1" -v N="$N" -v m="$(cat "$work/time")" \
		'BEGIN { printf "%-20s %9.2f %14.0f %12.0f\n", n, b - a, N / (b - a), m / 1024 }'
}

echo "== $N generated customer records, $(nproc) cores"
printf '%-20s %9s %14s %12s\n' case seconds records/s "peak RSS MB"
for p in csv_filter_csv csv_to_parquet jsonl_sha256; do
	if want "$p"; then run "$p" "$work/sluice" --home "$work/home-$p" run "$work/$p.yaml"; fi
done
if want naive_go_jsonl; then run naive_go_jsonl "$work/naive" "$work/customers.jsonl" "$work/naive.jsonl" email; fi
for p in gates_off gates_on; do
	if want "$p"; then run "$p" "$work/sluice" --home "$work/home-$p" run "$work/$p.yaml"; fi
done
if ! want postgres_copy_load && ! want postgres_read; then
	exit 0
fi
if psql "$PG" -qc 'SELECT 1' >/dev/null 2>&1; then
	if want postgres_copy_load; then run postgres_copy_load "$work/sluice" --home "$work/home-pg" run "$work/postgres_copy_load.yaml"; fi
	if want postgres_read; then run postgres_read "$work/sluice" --home "$work/home-pg" run "$work/postgres_read.yaml"; fi
else
	echo "(PostgreSQL at $PG is not reachable: run scripts/services.sh for the COPY figures)"
fi
