# The two commands of the README: `make demo` runs the demo pipeline on the
# embedded store; `make test` runs every test. Both work on a fresh clone.
.PHONY: demo test build bench fuzz

demo:
	go run ./cmd/sluice run examples/customers/pipeline.yaml

test:
	./scripts/test.sh

# One static binary: nothing in sluice needs C, and without cgo the binary
# runs on any Linux and starts without the dynamic loader.
build:
	CGO_ENABLED=0 go build -o bin/sluice ./cmd/sluice

bench:
	./bench/run.sh
