#!/usr/bin/env bash
# Runs the whole test suite: formatting, vet, and every test with the race
# detector. Connector tests talk to real PostgreSQL, MariaDB and NATS
# JetStream servers on loopback: scripts/services.sh checks each and starts
# it when it is down, so a fresh machine passes too. Tests that need a
# service fail (never skip) when it cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== services"
./scripts/services.sh

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m "$@" ./...
