package benchcompare

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zabkeeper/zabkeeper/loadgen"
)

// Machine describes where a comparison ran.
type Machine struct {
	CPU       string
	CPUs      int
	MemoryMB  int64
	Kernel    string
	LoadAvg   string // at the start
	Go        string
	Java      string
	ZooKeeper string // Debian package version
	WorkDir   string
	FS        string // the work directory's file system type
}

func describeMachine(cfg Config) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), WorkDir: cfg.WorkDir}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		for _, line := range strings.Split(string(b), "\n") {
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				m.MemoryMB = kb >> 10
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(cfg.WorkDir, &st); err == nil {
		m.FS = fsNames[int64(st.Type)]
		if m.FS == "" {
			m.FS = fmt.Sprintf("type %#x", st.Type)
		}
	}
	if out, err := exec.Command(cfg.Java, "-version").CombinedOutput(); err == nil {
		m.Java = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "zookeeper").Output(); err == nil {
		m.ZooKeeper = strings.TrimSpace(string(out))
	}
	return m
}

// fsNames are the statfs magic numbers of common Linux file systems (a
// tmpfs work directory would make fsync free and the figures meaningless).
var fsNames = map[int64]string{0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs",
	0x794c7630: "overlayfs", 0x2FC12FC1: "zfs"}

// ratio is b/a formatted, or "–" when a is zero.
func ratio(a, b float64) string {
	if a == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", b/a)
}

func mb(b int64) string { return fmt.Sprintf("%d MB", b>>20) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// WriteMarkdown writes the report as Markdown: machine, settings, one
// side-by-side table with ratios (zabkeeper / ZooKeeper: above 1 is more
// throughput, below 1 is lower latency), the fill, restart and failover
// figures, then command and note. chart, if not empty, is the SVG's path
// relative to the Markdown file.
func (rep *Report) WriteMarkdown(w io.Writer, command, note, chart string) error {
	var b strings.Builder
	c := rep.Config
	m := rep.Machine
	fmt.Fprintf(&b, "# zabkeeper vs Apache ZooKeeper\n\n")
	fmt.Fprintf(&b, "Measured by `zabkeeper bench compare` on %s (took %s). Ratios are zabkeeper / ZooKeeper: "+
		"above 1 means more ops/s, below 1 means lower latency.\n\n",
		rep.Started.UTC().Format("2006-01-02 15:04 MST"), rep.Finished.Sub(rep.Started).Round(time.Second))
	if note != "" {
		fmt.Fprintf(&b, "**Note:** %s\n\n", note)
	}
	fmt.Fprintf(&b, "## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPU | %s, %d logical CPUs |\n| memory | %d MB |\n| kernel | Linux %s |\n| load average at start | %s |\n",
		m.CPU, m.CPUs, m.MemoryMB, m.Kernel, m.LoadAvg)
	fmt.Fprintf(&b, "| Go | %s |\n| Java | %s |\n| ZooKeeper | Debian package %s |\n| data directories | %s, %s (one disk for both) |\n\n",
		m.Go, m.Java, m.ZooKeeper, m.WorkDir, m.FS)

	fmt.Fprintf(&b, "## Settings\n\nBoth systems get the same zoo.cfg: tickTime=%d, initLimit=10, syncLimit=5, forceSync=yes (fsync on), "+
		"loopback ports, maxClientCnxns=0, no admin server; ZooKeeper runs with -Xmx%s. Each workload: %d sessions "+
		"(one request outstanding each), %d-byte values, %v warm-up then %v measured, each workload deleting what it made afterwards (unmeasured), so every one starts on the same tree. "+
		"%d rounds; in each a fresh cluster of each system, both up, taking turns workload by workload (ZooKeeper first in odd rounds, zabkeeper in even ones; "+
		"the two measurements of a workload seconds apart, as the speed of a shared machine drifts), results merged (HDR histograms). "+
		"Sessions are spread round-robin over the servers. Client of the load generator: %s.\n\n",
		c.TickTime, c.JavaHeap, c.Sessions, c.ValueSize, c.Warmup, c.Duration, c.Rounds, clientName(c.Client))

	if len(rep.Rows) > 0 {
		fmt.Fprintf(&b, "## Throughput and latency\n\n")
		fmt.Fprintf(&b, "ZK = Apache ZooKeeper, zab = zabkeeper; latencies in ms.\n\n")
		fmt.Fprintf(&b, "| servers | workload | ZK ops/s | zab ops/s | ops/s ratio | ZK p50 | zab p50 | ZK p99 | zab p99 | p99 ratio | ZK p99.9 | zab p99.9 | ZK max | zab max | errors ZK / zab |\n")
		fmt.Fprintf(&b, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, row := range rep.Rows {
			a, z := row.Results[ZooKeeper], row.Results[Zabkeeper]
			name := string(row.Workload)
			if row.Workload == loadgen.WatchFanout {
				name = fmt.Sprintf("watch (1 write → %d watchers)", c.Sessions)
			}
			if row.Workload == loadgen.Mixed {
				name = fmt.Sprintf("mixed (%.0f%% reads)", a.ReadRatio*100)
			}
			fmt.Fprintf(&b, "| %d | %s | %.0f | %.0f | %s | %.2f | %.2f | %.2f | %.2f | %s | %.2f | %.2f | %.1f | %.1f | %d / %d |\n",
				row.Servers, name, a.OpsPerSec, z.OpsPerSec, ratio(a.OpsPerSec, z.OpsPerSec),
				a.Latency.P50, z.Latency.P50, a.Latency.P99, z.Latency.P99, ratio(a.Latency.P99, z.Latency.P99),
				a.Latency.P999, z.Latency.P999, a.Latency.Max, z.Latency.Max, a.ErrorCount, z.ErrorCount)
		}
		fmt.Fprintf(&b, "\n")
	}

	if a, z := rep.Fill[ZooKeeper], rep.Fill[Zabkeeper]; a != nil && z != nil {
		fmt.Fprintf(&b, "## %s znodes, standalone\n\n", thousands(c.Znodes))
		fmt.Fprintf(&b, "Filled by %d sessions creating %d-byte znodes; then the server is stopped (SIGTERM), restarted on the same "+
			"dataDir and timed from exec until a client session reads the fill's parent with all %s children.\n\n",
			c.Sessions, c.ValueSize, thousands(c.Znodes))
		fmt.Fprintf(&b, "| | ZooKeeper | zabkeeper | ratio |\n|---|---:|---:|---:|\n")
		fmt.Fprintf(&b, "| create ops/s while filling | %.0f | %.0f | %s |\n", a.Create.OpsPerSec, z.Create.OpsPerSec, ratio(a.Create.OpsPerSec, z.Create.OpsPerSec))
		fmt.Fprintf(&b, "| create p99 while filling | %.2f ms | %.2f ms | %s |\n", a.Create.Latency.P99, z.Create.Latency.P99, ratio(a.Create.Latency.P99, z.Create.Latency.P99))
		fmt.Fprintf(&b, "| RSS after the fill | %s | %s | %s |\n", mb(a.RSSAfterFill), mb(z.RSSAfterFill), ratio(float64(a.RSSAfterFill), float64(z.RSSAfterFill)))
		fmt.Fprintf(&b, "| restart to serving | %s | %s | %s |\n", secs(a.Restart), secs(z.Restart), ratio(a.Restart.Seconds(), z.Restart.Seconds()))
		fmt.Fprintf(&b, "| RSS after the restart | %s | %s | %s |\n\n", mb(a.RSSAfterRestart), mb(z.RSSAfterRestart), ratio(float64(a.RSSAfterRestart), float64(z.RSSAfterRestart)))
	}

	if a, z := rep.Failover[ZooKeeper], rep.Failover[Zabkeeper]; len(a) > 0 && len(z) > 0 {
		fmt.Fprintf(&b, "## Failover, 3 servers, tickTime=%d\n\n", c.TickTime)
		fmt.Fprintf(&b, "%d sessions write in a loop; the leader gets SIGKILL; the time is from the signal until the first write sent "+
			"after the leader was gone is acknowledged. Trials interleaved.\n\n", c.Sessions)
		fmt.Fprintf(&b, "| | ZooKeeper | zabkeeper |\n|---|---:|---:|\n")
		fmt.Fprintf(&b, "| trials | %s | %s |\n", durList(a), durList(z))
		fmt.Fprintf(&b, "| median | %s | %s |\n\n", secs(median(a)), secs(median(z)))
	}
	if chart != "" {
		fmt.Fprintf(&b, "## Chart\n\n![throughput and latency percentiles of both](%s)\n\n", chart)
	}
	fmt.Fprintf(&b, "## How to reproduce\n\n```\n%s\n```\n", command)
	_, err := io.WriteString(w, b.String())
	return err
}

// thousands formats n with thousands separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ShellQuote joins args into one shell command line, quoting where needed.
func ShellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+-") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func durList(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(s, ", ") + " s"
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// clientName describes the load generator's client for the settings line.
func clientName(c loadgen.Client) string {
	if c == loadgen.Lean {
		return "its lean client over the wire protocol (create, set, get, mixed, watch; go-zk for the other workloads)"
	}
	return "go-zk"
}
