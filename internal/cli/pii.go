package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/data"
	_ "github.com/sluicehq/sluice/internal/data/builtin" // the file connectors pii scan reads with
	"github.com/sluicehq/sluice/internal/privacy"
)

// piiFinding is a finding as shown to people and scripts. It carries counts
// only: the scan never prints a value it read.
type piiFinding struct {
	Column     string       `json:"column"`
	Type       privacy.Type `json:"type"`
	Matches    int64        `json:"matches"`
	Sampled    int64        `json:"sampled"`
	Ratio      float64      `json:"ratio"`
	Confidence float64      `json:"confidence"`
}

// piiReport is the result of `sluice pii scan`.
type piiReport struct {
	File     string       `json:"file"`
	Rows     int64        `json:"rows"`
	Rejected int64        `json:"rejected"`
	Findings []piiFinding `json:"findings"`
}

func piiCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pii",
		Short: "Find personal data in files",
	}
	return group(cmd, piiScanCommand(e))
}

func piiScanCommand(e *env) *cobra.Command {
	var (
		sample int
		region string
	)
	cmd := &cobra.Command{
		Use:   "scan FILE",
		Short: "Report which columns of a CSV, JSONL or Parquet file hold personal data",
		Long: `Scan reads FILE (by extension: .csv, .jsonl or .ndjson, .parquet; optionally
.gz or .zst compressed for the text formats) and reports, per string column, the
kind of personal data it most likely holds, with how many sampled values matched
and a confidence. It prints counts only, never a value from the file, and needs
no state directory.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if sample < 0 {
				return exitWith(ExitUsage, fmt.Errorf("--sample: %d is negative", sample))
			}
			if err := privacy.CheckRegion(region); err != nil {
				return exitWith(ExitUsage, fmt.Errorf("--region: %w", err))
			}
			rep, err := scanPII(cmd.Context(), a[0], sample, region)
			if err != nil {
				return err
			}
			if e.json() {
				return e.writeJSON(rep)
			}
			if rep.Rejected > 0 {
				fmt.Fprintf(e.stderr, "sluice: %s: %d records could not be read and were skipped\n", rep.File, rep.Rejected)
			}
			if len(rep.Findings) == 0 {
				fmt.Fprintf(e.stdout, "no personal data found in %d rows of %s\n", rep.Rows, rep.File)
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "COLUMN\tTYPE\tMATCHES\tSAMPLED\tRATIO\tCONFIDENCE")
			for _, f := range rep.Findings {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.3f\t%.2f\n", f.Column, f.Type, f.Matches, f.Sampled, f.Ratio, f.Confidence)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&sample, "sample", 0, "rows to examine (default all)")
	cmd.Flags().StringVar(&region, "region", privacy.DefaultRegion, "region that phone numbers without a country code are read in (ISO 3166 code)")
	return cmd
}

// connectorFor picks the file connector by the file's extension.
func connectorFor(path string) (string, error) {
	p := strings.ToLower(path)
	p = strings.TrimSuffix(strings.TrimSuffix(p, ".gz"), ".zst")
	switch filepath.Ext(p) {
	case ".csv":
		return "csv", nil
	case ".jsonl", ".ndjson":
		return "jsonl", nil
	case ".parquet":
		return "parquet", nil
	}
	return "", fmt.Errorf("%s: cannot tell the format from the extension (want .csv, .jsonl, .ndjson or .parquet)", path)
}

// countingQuarantine counts the records a connector rejects. Their content
// is dropped: a rejected record may itself hold personal data.
type countingQuarantine struct{ n int64 }

func (q *countingQuarantine) Reject(context.Context, data.Reject) error {
	q.n++
	return nil
}

// scanPII reads path through its file connector and runs the detector.
func scanPII(ctx context.Context, path string, sample int, region string) (piiReport, error) {
	rep := piiReport{File: path, Findings: []piiFinding{}}
	name, err := connectorFor(path)
	if err != nil {
		return rep, exitWith(ExitUsage, err)
	}
	conn, ok := data.Builtin.Lookup(name)
	if !ok || conn.OpenSource == nil {
		return rep, fmt.Errorf("%s: no %s source connector", path, name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return rep, fmt.Errorf("resolving %s: %w", path, err)
	}
	// Decode the settings as a pipeline would, so the connector applies
	// its own defaults and checks.
	cfg := conn.Config()
	settings := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "path"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: abs},
	}}
	if err := settings.Decode(cfg); err != nil {
		return rep, fmt.Errorf("configuring the %s reader: %w", name, err)
	}
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return rep, fmt.Errorf("configuring the %s reader: %w", name, err)
		}
	}
	q := &countingQuarantine{}
	env := data.Env{
		Dir:        filepath.Dir(abs),
		Expand:     func(s string) (string, error) { return s, nil }, // the path is literal
		Quarantine: q,
		BatchSize:  data.DefaultBatchSize,
	}
	src, err := conn.OpenSource(ctx, cfg, env)
	if err != nil {
		return rep, fmt.Errorf("opening %s: %w", path, err)
	}
	det := privacy.NewDetector(privacy.DetectOptions{SampleRows: sample, Region: region})
	rows, err := observeAll(ctx, src, det, int64(sample))
	if cerr := src.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing: %w", cerr)
	}
	if err != nil {
		return rep, fmt.Errorf("reading %s: %w", path, err)
	}
	rep.Rows, rep.Rejected = rows, q.n
	for _, f := range det.Findings() {
		rep.Findings = append(rep.Findings, piiFinding(f))
	}
	return rep, nil
}

// observeAll feeds src to det until the end of input or until sample rows
// (0: no limit), and returns the rows examined.
func observeAll(ctx context.Context, src data.Source, det *privacy.Detector, sample int64) (int64, error) {
	var rows int64
	for sample == 0 || rows < sample {
		b, err := src.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			return rows, err
		}
		det.Observe(b)
		n := int64(b.Len)
		if sample > 0 {
			n = min(n, sample-rows)
		}
		rows += n
	}
	return rows, nil
}
