package server_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
)

// The benchmarks drive a real server on loopback through go-zk, so each op
// pays for the client, TCP, the event loop and — for writes — an fsync of
// the log. They report ops/s; compare runs with benchstat, never with timed
// unit tests.

func benchServer(b *testing.B) *zk.Conn {
	b.Helper()
	addr, _ := startServer(b, nil)
	return connect(b, addr)
}

// BenchmarkCreate is one client creating znodes one after another: the
// latency of a durable write.
func BenchmarkCreate(b *testing.B) {
	c := benchServer(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, err := c.Create(fmt.Sprintf("/n%d", i), []byte("value"), 0, zk.WorldACL(zk.PermAll))
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkSetDataParallel is many outstanding writes at once from several
// goroutines: the throughput that group commit buys.
func BenchmarkSetDataParallel(b *testing.B) {
	c := benchServer(b)
	_, err := c.Create("/bench", []byte("0"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(b, err)
	var failed atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Set("/bench", []byte("value"), -1); err != nil {
				failed.Add(1)
			}
		}
	})
	require.Zero(b, failed.Load())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkGetData is one client reading one znode: the latency of a read.
func BenchmarkGetData(b *testing.B) {
	c := benchServer(b)
	_, err := c.Create("/bench", make([]byte, 100), 0, zk.WorldACL(zk.PermAll))
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		_, _, err := c.Get("/bench")
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkGetDataParallel is many outstanding reads at once.
func BenchmarkGetDataParallel(b *testing.B) {
	c := benchServer(b)
	_, err := c.Create("/bench", make([]byte, 100), 0, zk.WorldACL(zk.PermAll))
	require.NoError(b, err)
	var failed atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := c.Get("/bench"); err != nil {
				failed.Add(1)
			}
		}
	})
	require.Zero(b, failed.Load())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
