package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The test process counts its own pages: its code is resident, in windows
// of the sections that hold it, and so is its heap.
func TestDumpOwnProcess(t *testing.T) {
	out := filepath.Join(t.TempDir(), "dump.json")
	if err := writeDump(os.Getpid(), out); err != nil {
		t.Fatalf("writeDump: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var d dump
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	got := map[string]region{}
	total := 0
	for _, r := range d.Regions {
		got[r.Name] = r
		total += r.Pages
		if r.Windows > r.Spans || r.Pages > r.Windows*windowSize/pageSize && r.Spans > 0 {
			t.Errorf("%s: %d pages in %d windows of %d", r.Name, r.Pages, r.Windows, r.Spans)
		}
	}
	text := got["binary .text"]
	if text.Pages == 0 || text.Windows == 0 || text.Spans < text.Windows {
		t.Errorf("binary .text = %+v, want resident pages in windows it spans", text)
	}
	if got["anonymous (heap, stacks, SQLite)"].Pages == 0 {
		t.Errorf("no anonymous pages in %+v", d.Regions)
	}
	if hwm := total * pageSize / 1024; d.HWMKiB < hwm/2 || d.HWMKiB == 0 {
		t.Errorf("VmHWM %d KiB, counted %d KiB resident", d.HWMKiB, hwm)
	}
}

func TestSectionOf(t *testing.T) {
	secs := []section{{".text", 0x401000, 0x1000}, {".rodata", 0x402000, 0x800}, {".gopclntab", 0x402800, 0x2000}}
	for addr, want := range map[uint64]string{
		0x400000: "headers",
		0x401000: ".text",
		0x402000: ".gopclntab", // the page holds the start of .gopclntab too
		0x403000: ".gopclntab",
	} {
		if got := sectionOf(secs, addr); got != want {
			t.Errorf("sectionOf(%#x) = %s, want %s", addr, got, want)
		}
	}
}
