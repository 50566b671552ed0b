package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Every sluice command, even `version`, pays for the package initialisers of
// everything linked into the binary. These budgets keep that cost from
// creeping back. They count bytes allocated, which is deterministic enough to
// assert on, never time.
const (
	// phonenumbersInitBudget is what github.com/nyaruka/phonenumbers may
	// allocate while initialising. With third_party/phonenumbers.patch it
	// allocates about 0.3 MB (its regular expressions); without the patch
	// it parses all of its metadata at start and allocates about 2.5 MB.
	phonenumbersInitBudget = 1_000_000

	// initBudget is what all package initialisers together may allocate:
	// measured at about 1.88 MB, plus 25%.
	initBudget = 2_350_000

	// raceInitBudget replaces initBudget under -race, where the runtime and
	// some packages allocate more: measured at 2.8 to 3.15 MB, plus 25%.
	raceInitBudget = 3_950_000
)

// initTraceLine matches the lines GODEBUG=inittrace=1 prints to stderr, e.g.
// "init github.com/nyaruka/phonenumbers @4.0 ms, 1.4 ms clock, 941424 bytes, 10662 allocs".
var initTraceLine = regexp.MustCompile(`^init (\S+) @\S+ ms, \S+ ms clock, (\d+) bytes, \d+ allocs$`)

type initCost struct {
	pkg   string
	bytes int
}

// initCosts runs `sluice version` with GODEBUG=inittrace=1 and returns the
// bytes each package initialiser allocated, in the order they ran.
func initCosts(t *testing.T) []initCost {
	t.Helper()
	cmd := exec.Command(binary, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("running sluice version: %v\n%s", err, stderr.String())
	}
	var costs []initCost
	for line := range strings.Lines(stderr.String()) {
		m := initTraceLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[2])
		if err != nil {
			t.Fatalf("init trace line %q: bytes: %v", line, err)
		}
		costs = append(costs, initCost{pkg: m[1], bytes: n})
	}
	if len(costs) == 0 {
		t.Fatalf("sluice version printed no init trace lines; has the GODEBUG=inittrace=1 format changed?\n%s", stderr.String())
	}
	return costs
}

// biggest formats the ten packages whose initialisers allocated the most.
func biggest(costs []initCost) string {
	sorted := append([]initCost(nil), costs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].bytes > sorted[j].bytes })
	var b strings.Builder
	for _, c := range sorted[:min(10, len(sorted))] {
		fmt.Fprintf(&b, "%10d bytes  %s\n", c.bytes, c.pkg)
	}
	return b.String()
}

func TestStartupInitAllocations(t *testing.T) {
	t.Parallel()
	costs := initCosts(t)

	const phonenumbers = "github.com/nyaruka/phonenumbers"
	found := false
	total := 0
	for _, c := range costs {
		total += c.bytes
		if c.pkg != phonenumbers {
			continue
		}
		found = true
		if c.bytes >= phonenumbersInitBudget {
			t.Errorf("%s init allocated %d bytes, budget %d: is third_party/phonenumbers.patch (lazy metadata) still applied and the replace in go.mod still in place?",
				phonenumbers, c.bytes, phonenumbersInitBudget)
		}
	}
	if !found {
		t.Errorf("no init trace for %s: if the binary no longer links it, drop its budget here", phonenumbers)
	}

	budget := initBudget
	if raceEnabled {
		budget = raceInitBudget
	}
	if total >= budget {
		t.Errorf("package initialisers allocated %d bytes in total, budget %d", total, budget)
	}
	if t.Failed() {
		t.Logf("biggest package initialisers:\n%s", biggest(costs))
	}
}
