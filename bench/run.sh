#!/usr/bin/env bash
# Reproducible benchmarks of whole sluice runs through the real binary:
#   1. orchestration overhead: 1 task, 100 sequential and 100 independent
#      shell tasks running `true` — wall time and peak RSS per whole run,
#      with every state change durable (synchronous=FULL);
#   2. data throughput: N generated customer records, CSV → cast + filter +
#      derive → JSONL in one streaming task — records/s and peak RSS, at
#      1M and (with SIZES="1000000 10000000") 10M records.
# Usage: bench/run.sh            (REPEAT=5 SIZES="1000000" by default)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${REPEAT:-5}
SIZES=${SIZES:-1000000}
work=$(mktemp -d /tmp/sluice-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Built as the Makefile builds a release: one static binary, cgo off.
CGO_ENABLED=0 go build -o "$work/sluice" ./cmd/sluice
go build -o "$work/gen" ./bench/gen
# Peak RSS counts the pages of the binary a run maps, and how many the
# kernel maps on a page fault depends on how the file entered the page
# cache: a file the linker has just written sits in large folios that map
# whole, and measured up to 5 MB more than the same binary read from disk
# (from 30 to 35 MB for `sluice version`). Dropping the fresh binary's
# cached pages (posix_fadvise DONTNEED, no privilege needed) makes every
# run see the binary as an installed one, read from disk.
sync "$work/sluice"
dd if="$work/sluice" iflag=nocache count=0 status=none

# measure HOME CMD...: runs CMD $REPEAT times, removing the state directory
# HOME before each run, outside the clock; prints "median_seconds
# max_rss_mb". The time is the shell's clock around the process, which
# includes starting it; peak RSS comes from /usr/bin/time, in runs of their
# own so that starting /usr/bin/time is not timed.
measure() {
	local home=$1
	shift
	local times=() rss=0 m
	for _ in $(seq "$REPEAT"); do
		rm -rf "$home"
		local t0=$EPOCHREALTIME
		"$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
		local t1=$EPOCHREALTIME
		times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')")
		rm -rf "$home"
		/usr/bin/time -f "%M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" "$work/time"; exit 1; }
		read -r m <"$work/time"
		((m > rss)) && rss=$m
	done
	local med
	med=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	echo "$med $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')"
}

pipeline() { # name count sequential?
	local f="$work/$1.yaml" prev=""
	{
		echo "pipeline: $1"
		echo "max_active_tasks: 16"
		echo "tasks:"
		for i in $(seq "$2"); do
			echo "  t$i:"
			[ "$3" = seq ] && [ -n "$prev" ] && echo "    needs: [$prev]"
			echo '    shell: ["true"]'
			prev="t$i"
		done
	} >"$f"
	echo "$f"
}

echo "== orchestration overhead (median of $REPEAT runs, fresh state directory each run)"
printf '%-28s %10s %12s\n' case seconds "peak RSS MiB"
printf '%-28s %10s %12s\n' "sluice version" $(measure "" "$work/sluice" version)
for c in "single 1 seq" "sequential100 100 seq" "independent100 100 par"; do
	set -- $c
	f=$(pipeline "$1" "$2" "$3")
	res=$(measure "$work/home-$1" "$work/sluice" --home "$work/home-$1" run "$f")
	printf '%-28s %10s %12s\n' "$1" $res
done
echo "reference (issue figures for an established single-binary Go DAG runner): 100 sequential ≈ 1.0 s, single ≈ 0.07 s, 70-90 MB"
echo "targets: 100 sequential ≤ 0.2 s; single ≤ 0.02 s and ≤ 30 MB"

echo
echo "== data: CSV → cast + filter + derive → JSONL, one streaming task"
cat >"$work/data.yaml" <<'YAML'
pipeline: bench_data
tasks:
  customers:
    extract: {csv: {path: customers.csv}}
    transform:
      - cast: {id: int, age: int, monthly_spend: float}
      - filter: "row.country in ['DE', 'FR', 'US'] && row.age >= 18"
      - derive:
          full_name: "row.first_name + ' ' + row.last_name"
          email_domain: "row.email.split('@')[1]"
    load: {jsonl: {path: out.jsonl}, classification: restricted}
YAML
printf '%-12s %10s %14s %12s\n' records seconds records/s "peak RSS MiB"
for n in $SIZES; do
	"$work/gen" -n "$n" -o "$work/customers.csv"
	res=$(REPEAT=$(( n > 2000000 ? 1 : 3 )) measure "$work/home-data" "$work/sluice" --home "$work/home-data" run "$work/data.yaml")
	set -- $res
	printf '%-12s %10s %14s %12s\n' "$n" "$1" "$(awk -v n="$n" -v t="$1" 'BEGIN { printf "%.0f", n / t }')" "$2"
	rm -f "$work/customers.csv" "$work/out.jsonl"
done
echo "targets: ≥ 500k records/s on 2 cores; peak RSS < 100 MB and flat from 1M to 10M"
