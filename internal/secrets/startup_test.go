package secrets

import (
	"regexp"
	"strings"
	"testing"
)

// The start-up-cheap forms of the name rule and of the GitHub token shape
// must accept exactly what the patterns they replace accept.

func TestValidNameCharsMatchesNamePattern(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(NamePattern)
	names := []string{"", "a", "_", "Z", "9", "-", ".", "a9", "a.b-c_D", "_.", "a b", "a:b", "a}", "é", "aé", "a\n",
		"a\x00", strings.Repeat("a", 127), strings.Repeat("a", 128), strings.Repeat("a", 129), "_" + strings.Repeat("9", 127)}
	for c := 0; c < 256; c++ {
		names = append(names, string(rune(c)), "a"+string([]byte{byte(c)}), string([]byte{byte(c)})+"a")
	}
	for _, name := range names {
		if got, want := nameRule.Match(name), re.MatchString(name); got != want {
			t.Errorf("nameRule.Match(%q) = %v, NamePattern says %v", name, got, want)
		}
	}
}

func TestGitHubTokenLengthBound(t *testing.T) {
	t.Parallel()
	bounded := regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36,251}\b`)
	var shape tokenShape
	for _, ts := range tokenShapes {
		if strings.Contains(ts.re.String(), "gh[pousr]") {
			shape = ts
		}
	}
	if shape.re == nil {
		t.Fatal("no GitHub token shape")
	}
	for _, n := range []int{35, 36, 37, 250, 251, 252, 400} {
		for _, text := range []string{
			"ghp_" + strings.Repeat("x", n),
			"token ghs_" + strings.Repeat("7", n) + " and more",
			"xghp_" + strings.Repeat("x", n),
			"ghp_" + strings.Repeat("x", n) + "-ghu_" + strings.Repeat("y", 40),
		} {
			var got [][]int
			for _, loc := range shape.re.FindAllStringIndex(text, -1) {
				if loc[1]-loc[0] <= shape.maxLen {
					got = append(got, loc)
				}
			}
			want := bounded.FindAllStringIndex(text, -1)
			if len(got) != len(want) {
				t.Errorf("n=%d %q: found %v, bounded pattern finds %v", n, text[:12], got, want)
				continue
			}
			for i := range got {
				if got[i][0] != want[i][0] || got[i][1] != want[i][1] {
					t.Errorf("n=%d %q: found %v, bounded pattern finds %v", n, text[:12], got, want)
				}
			}
		}
	}
}
