package benchcompare

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/loadgen"
)

// syntheticReport is a report with made-up figures, to test the writers.
func syntheticReport() *Report {
	rep := &Report{Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Config: DefaultConfig(),
		Fill: map[System]*FillResult{}, Failover: map[System][]time.Duration{}}
	rep.Finished = rep.Started.Add(90 * time.Second)
	for _, n := range []int{1, 3} {
		for _, w := range []loadgen.Workload{loadgen.Set, loadgen.Get} {
			rep.Rows = append(rep.Rows, Row{Servers: n, Workload: w, Results: map[System]*loadgen.Result{
				ZooKeeper: {Workload: string(w), OpsPerSec: 1000, Latency: loadgen.Latency{P50: 1, P99: 4, P999: 8, Max: 9}},
				Zabkeeper: {Workload: string(w), OpsPerSec: 1900, Latency: loadgen.Latency{P50: 0.5, P99: 1.28, P999: 2, Max: 3}},
			}})
		}
	}
	rep.Fill[ZooKeeper] = &FillResult{Create: &loadgen.Result{OpsPerSec: 1000}, RSSAfterFill: 910 << 20, Restart: 8300 * time.Millisecond, RSSAfterRestart: 900 << 20}
	rep.Fill[Zabkeeper] = &FillResult{Create: &loadgen.Result{OpsPerSec: 740}, RSSAfterFill: 910 << 20, Restart: 4800 * time.Millisecond, RSSAfterRestart: 450 << 20}
	rep.Failover[ZooKeeper] = []time.Duration{400 * time.Millisecond, 1400 * time.Millisecond}
	rep.Failover[Zabkeeper] = []time.Duration{4600 * time.Millisecond, 6600 * time.Millisecond, 5000 * time.Millisecond}
	return rep
}

// The Markdown has the ratios zabkeeper / ZooKeeper in the right places.
func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, syntheticReport().WriteMarkdown(&b, "zabkeeper bench compare --znodes 5", "busy machine", "docs/x.svg"))
	md := b.String()
	require.Contains(t, md, "| 3 | set | 1000 | 1900 | 1.90x | 1.00 | 0.50 | 4.00 | 1.28 | 0.32x |")
	require.Contains(t, md, "| create ops/s while filling | 1000 | 740 | 0.74x |")
	require.Contains(t, md, "| RSS after the fill | 910 MB | 910 MB | 1.00x |")
	require.Contains(t, md, "| restart to serving | 8.30 s | 4.80 s | 0.58x |")
	require.Contains(t, md, "| median | 0.90 s | 5.00 s |")
	require.Contains(t, md, "**Note:** busy machine")
	require.Contains(t, md, "![throughput and latency percentiles of both](docs/x.svg)")
	require.Contains(t, md, "zabkeeper bench compare --znodes 5")
}

// The SVG is well-formed XML naming both systems.
func TestWriteSVG(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, syntheticReport().WriteSVG(&b))
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	var text strings.Builder
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
		}
	}
	require.Equal(t, "svg", root)
	for _, want := range []string{"zookeeper", "zabkeeper", "Throughput", "p99 latency", "3 servers"} {
		require.Contains(t, text.String(), want)
	}
	require.Error(t, (&Report{}).WriteSVG(io.Discard), "no rows, no chart")
}

func TestFormatting(t *testing.T) {
	require.Equal(t, "1,000,000", thousands(1_000_000))
	require.Equal(t, "200", thousands(200))
	require.Equal(t, "-12,345", thousands(-12345))
	require.Equal(t, `zabkeeper --note 'it'\''s busy' --znodes 5 ''`, ShellQuote([]string{"zabkeeper", "--note", "it's busy", "--znodes", "5", ""}))
}

func TestMedian(t *testing.T) {
	require.Equal(t, 2*time.Second, median([]time.Duration{3 * time.Second, time.Second, 2 * time.Second}))
	require.Equal(t, 1500*time.Millisecond, median([]time.Duration{2 * time.Second, time.Second}))
}
