#!/usr/bin/env bash
# Runs the whole test suite: formatting, vet, and every test with the race
# detector. The embedded store (SQLite) needs no service. As connectors
# that talk to PostgreSQL, MariaDB or NATS arrive, this script checks each
# service their tests need and starts it when it is down, so a fresh machine
# passes too.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m "$@" ./...
