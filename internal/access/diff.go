package access

import (
	"fmt"
	"strings"
)

// maxDiffCells bounds the LCS table (lines of a × lines of b). Pipeline
// files are small; past this the diff replaces the whole file, which is
// still a correct unified diff.
const maxDiffCells = 4 << 20

// diffContext is the number of unchanged lines around each change.
const diffContext = 3

type diffOp struct {
	kind byte // ' ', '-' or '+'
	text string
}

// splitLines splits text into lines without their newlines; a final
// newline does not start an empty line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// lineOps is the edit script from a to b along a longest common
// subsequence of lines.
func lineOps(a, b []string) []diffOp {
	// Common prefix and suffix cost nothing and shrink the table.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []diffOp
	for _, l := range a[:pre] {
		ops = append(ops, diffOp{' ', l})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(ma), len(mb)
	if n*m > maxDiffCells {
		for _, l := range ma {
			ops = append(ops, diffOp{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, diffOp{'+', l})
		}
	} else {
		// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
		lcs := make([][]int32, n+1)
		for i := range lcs {
			lcs[i] = make([]int32, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				ops = append(ops, diffOp{' ', ma[i]})
				i++
				j++
			case j < m && (i == n || lcs[i][j+1] > lcs[i+1][j]):
				ops = append(ops, diffOp{'+', mb[j]})
				j++
			default:
				ops = append(ops, diffOp{'-', ma[i]})
				i++
			}
		}
	}
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, diffOp{' ', l})
	}
	return ops
}

// unifiedDiff returns the unified diff (3 lines of context) from a to b,
// labelled with the given names; "" when they are equal.
func unifiedDiff(fromName, toName string, a, b []byte) string {
	ops := lineOps(splitLines(string(a)), splitLines(string(b)))
	var changes []int
	for i, op := range ops {
		if op.kind != ' ' {
			changes = append(changes, i)
		}
	}
	if len(changes) == 0 {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", fromName, toName)
	for k := 0; k < len(changes); {
		// A hunk takes changes separated by at most 2×context equal lines.
		last := k
		for last+1 < len(changes) && changes[last+1]-changes[last] <= 2*diffContext+1 {
			last++
		}
		start := max(changes[k]-diffContext, 0)
		end := min(changes[last]+diffContext+1, len(ops))
		aBefore, bBefore := 0, 0
		for _, op := range ops[:start] {
			if op.kind != '+' {
				aBefore++
			}
			if op.kind != '-' {
				bBefore++
			}
		}
		aCount, bCount := 0, 0
		for _, op := range ops[start:end] {
			if op.kind != '+' {
				aCount++
			}
			if op.kind != '-' {
				bCount++
			}
		}
		aStart, bStart := aBefore+1, bBefore+1
		if aCount == 0 {
			aStart = aBefore
		}
		if bCount == 0 {
			bStart = bBefore
		}
		fmt.Fprintf(&sb, "@@ -%d,%d +%d,%d @@\n", aStart, aCount, bStart, bCount)
		for _, op := range ops[start:end] {
			sb.WriteByte(op.kind)
			sb.WriteString(op.text)
			sb.WriteByte('\n')
		}
		k = last + 1
	}
	return sb.String()
}
