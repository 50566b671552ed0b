// Command rssmap shows where the resident memory of a one-task `sluice run`
// comes from. It runs the given sluice binary on a new state directory with
// a pipeline whose one task is rssmap itself; that task reads the page map of
// its parent (the running sluice) and counts the parent's resident pages by
// where they come from: each section of the binary, anonymous memory (the Go
// heap, stacks, SQLite's memory, the runtime's own structures) and other
// files. For the binary it also counts the 64 KiB windows touched, since the
// kernel maps such a window around each page fault of a file that is in the
// page cache.
//
//	go build -o /tmp/rssmap ./bench/rssmap
//	CGO_ENABLED=0 go build -o /tmp/sluice ./cmd/sluice
//	/tmp/rssmap -sluice /tmp/sluice
//
// The counts are taken while the task runs, so they miss what the run does
// after it (the last step, closing the store); the whole run's peak, from
// the kernel's accounting, is printed beside them.
package main

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

const (
	pageSize   = 4096
	windowSize = 64 << 10
)

// region is one line of the report: resident pages and, for the binary's
// sections, the distinct 64 KiB windows they fall in.
type region struct {
	Name    string `json:"name"`
	Pages   int    `json:"pages"`
	Windows int    `json:"windows,omitempty"` // touched, for sections of the binary
	Spans   int    `json:"spans,omitempty"`   // windows the sections span
}

type dump struct {
	Regions []region `json:"regions"`
	HWMKiB  int      `json:"hwm_kib"` // VmHWM of the parent when the task ran
}

func main() {
	sluice := flag.String("sluice", "", "the sluice binary to measure")
	out := flag.String("dump", "", "(used as the pipeline's task) write the parent's page counts to this file")
	flag.Parse()
	var err error
	switch {
	case *out != "":
		err = writeDump(os.Getppid(), *out)
	case *sluice != "":
		err = report(*sluice, os.Stdout)
	default:
		err = errors.New("want -sluice BINARY")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rssmap:", err)
		os.Exit(1)
	}
}

// report runs sluice on a one-task pipeline whose task dumps sluice's pages,
// then prints the dump.
func report(sluice string, w io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "rssmap-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "dump.json")
	pipe := filepath.Join(dir, "pipeline.yaml")
	task, err := json.Marshal([]string{self, "-dump", out})
	if err != nil {
		return err
	}
	if err := os.WriteFile(pipe, fmt.Appendf(nil, "pipeline: rssmap\ntasks:\n  dump:\n    shell: %s\n", task), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(sluice, "--home", filepath.Join(dir, "home"), "run", pipe)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s run: %w\n%s", sluice, err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	var d dump
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("reading %s: %w", out, err)
	}
	total := 0
	for _, r := range d.Regions {
		total += r.Pages
	}
	fmt.Fprintf(w, "resident pages of `sluice run` (one shell task), counted while the task runs\n\n")
	fmt.Fprintf(w, "%-34s %10s %8s %14s\n", "where", "MiB", "share", "64 KiB windows")
	for _, r := range d.Regions {
		win := ""
		if r.Spans > 0 {
			win = fmt.Sprintf("%d of %d", r.Windows, r.Spans)
		}
		fmt.Fprintf(w, "%-34s %10.2f %7.1f%% %14s\n", r.Name, mib(r.Pages), 100*float64(r.Pages)/float64(total), win)
	}
	fmt.Fprintf(w, "%-34s %10.2f\n\n", "total", mib(total))
	fmt.Fprintf(w, "peak while the task ran (VmHWM):   %6.2f MiB\n", float64(d.HWMKiB)/1024)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		fmt.Fprintf(w, "peak of the whole run (ru_maxrss): %6.2f MiB\n", float64(ru.Maxrss)/1024)
	}
	return nil
}

func mib(pages int) float64 { return float64(pages) * pageSize / (1 << 20) }

// writeDump counts the resident pages of process pid and writes them to out.
func writeDump(pid int, out string) error {
	proc := "/proc/" + strconv.Itoa(pid)
	exe, err := os.Readlink(proc + "/exe")
	if err != nil {
		return err
	}
	sections, err := allocSections(proc + "/exe")
	if err != nil {
		return err
	}
	maps, err := os.Open(proc + "/maps")
	if err != nil {
		return err
	}
	defer maps.Close()
	pagemap, err := os.Open(proc + "/pagemap")
	if err != nil {
		return err
	}
	defer pagemap.Close()

	pages := map[string]int{}
	windows := map[string]map[uint64]bool{}
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		// address perms offset dev inode [path]
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		lo, hi, err := parseRange(f[0])
		if err != nil {
			return fmt.Errorf("%s/maps: %w", proc, err)
		}
		path := ""
		if len(f) > 5 {
			path = strings.Join(f[5:], " ")
		}
		if path == "[vsyscall]" {
			continue // not in the page map
		}
		present, err := presentPages(pagemap, lo, hi)
		if err != nil {
			return fmt.Errorf("%s/pagemap: %w", proc, err)
		}
		for _, addr := range present {
			if path != exe {
				pages[kindOf(path)]++
				continue
			}
			name := "binary " + sectionOf(sections, addr)
			if windows[name] == nil {
				windows[name] = map[uint64]bool{}
			}
			windows[name][addr/windowSize] = true
			pages[name]++
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var d dump
	for name, n := range pages {
		r := region{Name: name, Pages: n, Windows: len(windows[name])}
		spanned := map[uint64]bool{}
		for _, s := range sections {
			if "binary "+s.name == name {
				for w := s.lo / windowSize; w <= (s.lo+s.size-1)/windowSize; w++ {
					spanned[w] = true
				}
			}
		}
		r.Spans = len(spanned)
		d.Regions = append(d.Regions, r)
	}
	sort.Slice(d.Regions, func(i, j int) bool { return d.Regions[i].Pages > d.Regions[j].Pages })
	if d.HWMKiB, err = statusKiB(proc+"/status", "VmHWM:"); err != nil {
		return err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o600)
}

// kindOf names a mapping that is not the binary.
func kindOf(path string) string {
	switch {
	case path == "":
		return "anonymous (heap, stacks, SQLite)"
	case strings.HasPrefix(path, "["):
		return path
	}
	return "file " + filepath.Base(path)
}

type section struct {
	name     string
	lo, size uint64
}

// allocSections lists the sections of the ELF file that are loaded into
// memory, by address. The .data, .bss and .noptr* sections share a segment
// and are reported together as "data".
func allocSections(path string) ([]section, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []section
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Flags&elf.SHF_TLS != 0 || s.Size == 0 {
			continue // not loaded, or a template for each thread's storage
		}
		name := s.Name
		if s.Flags&elf.SHF_WRITE != 0 {
			name = "data (.data, .bss, ...)"
		}
		out = append(out, section{name: name, lo: s.Addr, size: s.Size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lo < out[j].lo })
	return out, nil
}

// sectionOf names the section holding the page at addr: the last section
// starting before the page ends, since sections need not start on a page.
func sectionOf(sections []section, addr uint64) string {
	name := "headers"
	for _, s := range sections {
		if s.lo < addr+pageSize {
			name = s.name
		}
	}
	return name
}

func parseRange(s string) (lo, hi uint64, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("bad address range %q", s)
	}
	if lo, err = strconv.ParseUint(a, 16, 64); err != nil {
		return 0, 0, err
	}
	if hi, err = strconv.ParseUint(b, 16, 64); err != nil {
		return 0, 0, err
	}
	return lo, hi, nil
}

// presentPages returns the addresses of the pages in [lo, hi) that are
// resident: bit 63 of each 8-byte page-map entry (see the kernel's
// Documentation/admin-guide/mm/pagemap.rst). It reads the map in chunks,
// since a reservation can span gigabytes.
func presentPages(pagemap *os.File, lo, hi uint64) ([]uint64, error) {
	const chunk = 1 << 16 // pages
	buf := make([]byte, 8*chunk)
	var out []uint64
	for start := lo; start < hi; start += chunk * pageSize {
		n := min((hi-start)/pageSize, chunk)
		if _, err := pagemap.ReadAt(buf[:8*n], int64(start/pageSize*8)); err != nil {
			return nil, err
		}
		for i := range n {
			if binary.LittleEndian.Uint64(buf[8*i:])&(1<<63) != 0 {
				out = append(out, start+i*pageSize)
			}
		}
	}
	return out, nil
}

func statusKiB(path, field string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, field)
}
