package admin

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the distributions and counters the server records as things
// happen, beyond the point-in-time figures mntr shows. Every one is safe to
// update from any goroutine and costs a few atomic operations, so the event
// loop may record them.
type Metrics struct {
	// RequestLatency is the time from a request's arrival on the event loop
	// to its reply, by operation.
	RequestLatency *prometheus.HistogramVec
	// ProposalCommit is the time from a txn's entry into this server's log
	// (proposed by the leader, or received by a learner) to its commit.
	ProposalCommit prometheus.Histogram
	// Fsync is the duration of one append-and-fsync of the txn log.
	Fsync prometheus.Histogram
	// FsyncBatch is the number of txns one fsync made durable.
	FsyncBatch prometheus.Histogram
	// SnapshotDuration and SnapshotSize describe each snapshot written.
	SnapshotDuration prometheus.Histogram
	SnapshotSize     prometheus.Histogram
	// Election is the time spent looking for a leader; Sync the time from
	// finding one to serving (discovery and synchronization).
	Election prometheus.Histogram
	Sync     prometheus.Histogram
	// DiffCount, TruncCount and SnapCount count the ways this server, as a
	// leader, brought learners up to date (ZooKeeper's diff_count and
	// snap_count; trunc_count is ours, named alike).
	DiffCount, TruncCount, SnapCount prometheus.Counter
}

// Bucket sets the histograms share: request-path latencies from 50 µs,
// phases of a server's life (elections, syncs) from 10 ms.
var (
	latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 18)
	phaseBuckets   = prometheus.ExponentialBuckets(10e-3, 2, 14)
)

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RequestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zabkeeper_request_latency_seconds",
			Help:    "Time from a client request's arrival to its reply, by operation.",
			Buckets: latencyBuckets,
		}, []string{"op"}),
		ProposalCommit: histogram("zabkeeper_proposal_commit_seconds",
			"Time from a txn entering this server's log to its commit.", latencyBuckets),
		Fsync: histogram("zabkeeper_fsync_seconds",
			"Duration of one append and fsync of the txn log.", latencyBuckets),
		FsyncBatch: histogram("zabkeeper_fsync_batch_txns",
			"Number of txns made durable by one fsync (group commit).", prometheus.ExponentialBuckets(1, 2, 13)),
		SnapshotDuration: histogram("zabkeeper_snapshot_seconds",
			"Time to write one snapshot.", prometheus.ExponentialBuckets(1e-3, 2, 18)),
		SnapshotSize: histogram("zabkeeper_snapshot_bytes",
			"Size of each snapshot written.", prometheus.ExponentialBuckets(1024, 4, 12)),
		Election: histogram("zabkeeper_election_seconds",
			"Time spent looking for a leader, each time this server looked.", phaseBuckets),
		Sync: histogram("zabkeeper_sync_seconds",
			"Time from finding a leader (or becoming one) to serving: discovery and synchronization.", phaseBuckets),
		DiffCount:  counter("diff_count", "Learners brought up to date by DIFF (leader)."),
		TruncCount: counter("trunc_count", "Learners brought up to date by TRUNC (leader)."),
		SnapCount:  counter("snap_count", "Learners brought up to date by SNAP (leader)."),
	}
	reg.MustRegister(m.RequestLatency, m.ProposalCommit, m.Fsync, m.FsyncBatch, m.SnapshotDuration,
		m.SnapshotSize, m.Election, m.Sync, m.DiffCount, m.TruncCount, m.SnapCount)
	return m
}

// Figure is one point-in-time value, as mntr shows it.
type Figure struct {
	// Name is the metric name: mntr's key without "zk_", which is the name
	// ZooKeeper's Prometheus metrics provider uses.
	Name string
	// Value is the figure.
	Value float64
	// Label and LabelValue give a figure one label, e.g. server_state's
	// state; empty for none.
	Label, LabelValue string
}

// FigureCollector exports the figures a function returns as gauges. The
// function must not block: it reads a snapshot the server keeps, never the
// live state. It is an unchecked collector because the set of figures
// changes with the server's role (leader-only figures come and go).
type FigureCollector struct {
	figures func() []Figure
}

// NewFigureCollector returns a collector over figures.
func NewFigureCollector(figures func() []Figure) *FigureCollector {
	return &FigureCollector{figures: figures}
}

// Describe sends nothing: the collector is unchecked.
func (c *FigureCollector) Describe(chan<- *prometheus.Desc) {}

// Collect sends one gauge per figure.
func (c *FigureCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.figures() {
		var labels []string
		var values []string
		if f.Label != "" {
			labels, values = []string{f.Label}, []string{f.LabelValue}
		}
		desc := prometheus.NewDesc(f.Name, f.Name+" (as mntr's zk_"+f.Name+")", labels, nil)
		m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, f.Value, values...)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(desc, err)
			continue
		}
		ch <- m
	}
}
