package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what one run measured. Latencies are of successful requests
// only (for WatchFanout: from the write until the last watcher's event).
type Result struct {
	Workload  string   `json:"workload"`
	Servers   []string `json:"servers"`
	Sessions  int      `json:"sessions"`
	ValueSize int      `json:"value_size"`
	ReadRatio float64  `json:"read_ratio,omitempty"`
	MultiOps  int      `json:"multi_ops,omitempty"`
	Root      string   `json:"root"`
	// Client is the client the requests went through (go-zk or lean).
	Client string `json:"client"`
	// Ops is the number of successful measured operations.
	Ops int64 `json:"ops"`
	// ErrorCount is the number of failed measured operations; Errors
	// counts them by error message.
	ErrorCount int64            `json:"error_count"`
	Errors     map[string]int64 `json:"errors,omitempty"`
	// Seconds is the length of the measured phase.
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Latency   Latency `json:"latency_ms"`

	hist *hdrhistogram.Histogram // for Merge
}

// Merge combines results of the same workload from several runs (say, the
// rounds of a comparison) into one: ops, errors and measured time add up,
// and the percentiles are those of the merged histograms. Nil if rs is empty.
func Merge(rs []*Result) *Result {
	if len(rs) == 0 {
		return nil
	}
	out := *rs[0]
	out.Root = ""
	out.Ops, out.ErrorCount, out.Seconds = 0, 0, 0
	out.Errors = map[string]int64{}
	out.hist = hdrhistogram.New(histMinMicros, histMaxMicros, histDigits)
	for _, r := range rs {
		out.Ops += r.Ops
		out.ErrorCount += r.ErrorCount
		out.Seconds += r.Seconds
		for k, v := range r.Errors {
			out.Errors[k] += v
		}
		if r.hist != nil {
			out.hist.Merge(r.hist)
		}
	}
	if out.Seconds > 0 {
		out.OpsPerSec = float64(out.Ops) / out.Seconds
	}
	out.Latency = percentiles(out.hist)
	return &out
}

// Latency is a latency summary in milliseconds (microsecond resolution).
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// WriteJSON writes results as one indented JSON array.
func WriteJSON(w io.Writer, results []*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(results); err != nil {
		return fmt.Errorf("loadgen: encode results: %w", err)
	}
	return nil
}

// WriteTable writes results as an aligned text table, one row per run,
// then the error messages if any request failed.
func WriteTable(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tsessions\tops\terrors\tsecs\tops/s\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", r.Workload, r.Sessions, r.Ops,
			r.ErrorCount, r.Seconds, r.OpsPerSec, r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("loadgen: write table: %w", err)
	}
	for _, r := range results {
		msgs := make([]string, 0, len(r.Errors))
		for m := range r.Errors {
			msgs = append(msgs, m)
		}
		slices.Sort(msgs)
		for _, m := range msgs {
			fmt.Fprintf(w, "%s: %d × %s\n", r.Workload, r.Errors[m], strings.TrimSpace(m))
		}
	}
	return nil
}
