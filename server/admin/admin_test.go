package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/server/admin"
)

// fakeSource answers like a server whose state the test sets.
type fakeSource struct {
	ready atomic.Bool
	live  atomic.Bool
}

func (f *fakeSource) Commands() []admin.Command {
	return []admin.Command{{Name: "ruok"}, {Name: "monitor", Aliases: []string{"mntr"}}}
}

func (f *fakeSource) Run(ctx context.Context, name string) (admin.Response, bool) {
	switch name {
	case "ruok":
		return admin.Response{Command: "ruok"}, true
	case "monitor", "mntr":
		return admin.Response{Command: "monitor", Fields: []admin.Field{{Key: "znode_count", Value: 5}, {Key: "server_state", Value: "leader"}}}, true
	}
	return admin.Response{}, false
}

func (f *fakeSource) Live() (bool, string) {
	if f.live.Load() {
		return true, ""
	}
	return false, "event loop stalled"
}

func (f *fakeSource) Ready() (bool, string) {
	if f.ready.Load() {
		return true, ""
	}
	return false, "looking: electing a leader"
}

func startAdmin(t *testing.T, lim admin.Limits) (*fakeSource, string) {
	t.Helper()
	src := &fakeSource{}
	src.live.Store(true)
	reg := prometheus.NewRegistry()
	m := admin.NewMetrics(reg)
	m.Fsync.Observe(0.002)
	reg.MustRegister(admin.NewFigureCollector(func() []admin.Figure {
		return []admin.Figure{{Name: "znode_count", Value: 5}, {Name: "server_state", Value: 1, Label: "state", LabelValue: "leader"}}
	}))
	s, err := admin.Listen("127.0.0.1:0", src, reg, slog.New(slog.DiscardHandler), lim)
	require.NoError(t, err)
	s.Serve()
	t.Cleanup(s.Close)
	return src, "http://" + s.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestResponseJSONKeepsZooKeeperShape(t *testing.T) {
	b, err := json.Marshal(admin.Response{Command: "stats", Fields: []admin.Field{{Key: "b", Value: 1}, {Key: "a", Value: "x"}}})
	require.NoError(t, err)
	require.Equal(t, `{"command":"stats","error":null,"b":1,"a":"x"}`, string(b))
	b, err = json.Marshal(admin.Response{Command: "nope", Error: "Unknown command: nope"})
	require.NoError(t, err)
	require.Equal(t, `{"command":"nope","error":"Unknown command: nope"}`, string(b))
}

func TestEndpoints(t *testing.T) {
	src, base := startAdmin(t, admin.DefaultLimits())

	code, body := get(t, base+"/livez")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	src.live.Store(false)
	code, body = get(t, base+"/livez")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "stalled")

	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "looking: electing a leader\n", body)
	src.ready.Store(true)
	code, _ = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code)

	code, body = get(t, base+"/commands")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "<a href=\"/commands/monitor\">monitor</a>\n<br/>\n<a href=\"/commands/ruok\">ruok</a>\n<br/>\n", body)

	code, body = get(t, base+"/commands/mntr")
	require.Equal(t, http.StatusOK, code)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	require.Equal(t, map[string]any{"command": "monitor", "error": nil, "znode_count": 5.0, "server_state": "leader"}, m)

	// Unknown commands answer 200 with an error, as ZooKeeper does.
	code, body = get(t, base+"/commands/nosuch")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	require.Equal(t, "Unknown command: nosuch", m["error"])

	resp, err := http.Post(base+"/commands/ruok", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	code, _ = get(t, base+"/nowhere")
	require.Equal(t, http.StatusNotFound, code)

	code, body = get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, 5.0, fams["znode_count"].GetMetric()[0].GetGauge().GetValue())
	require.Equal(t, "leader", fams["server_state"].GetMetric()[0].GetLabel()[0].GetValue())
	require.Equal(t, uint64(1), fams["zabkeeper_fsync_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())
	for _, name := range []string{"diff_count", "snap_count", "trunc_count", "zabkeeper_snapshot_seconds", "zabkeeper_election_seconds"} {
		require.Contains(t, fams, name)
	}
}

// TestSurvivesGarbageAndSlowClients: binary garbage, oversized headers and a
// client that never finishes its request neither crash the listener nor
// keep it from answering others; the stalled connection is closed.
func TestSurvivesGarbageAndSlowClients(t *testing.T) {
	lim := admin.DefaultLimits()
	lim.ReadHeaderTimeout, lim.ReadTimeout, lim.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	lim.MaxHeaderBytes = 1 << 10
	_, base := startAdmin(t, lim)
	addr := strings.TrimPrefix(base, "http://")

	// A slow client: half a request line, then silence.
	slow, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer slow.Close()
	_, err = slow.Write([]byte("GET /livez HT"))
	require.NoError(t, err)

	for _, garbage := range [][]byte{
		{0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0xff, 0xfe, '\r', '\n', '\r', '\n'},
		[]byte("ruok"),
		[]byte("GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 8<<10) + "\r\n\r\n"),
		[]byte("\r\n\r\n\r\n"),
	} {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, _ = c.Write(garbage)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line != "" {
			// A reply, when there is one, is an HTTP error.
			require.Regexp(t, `^HTTP/1\.1 4\d\d `, line, "garbage %q", garbage)
		}
		c.Close()
	}
	code, _ := get(t, base+"/livez")
	require.Equal(t, http.StatusOK, code, "still answering while a slow client stalls")

	// The stalled connection is closed after the header timeout (the reply,
	// if any, is an HTTP error), rather than held forever.
	require.NoError(t, slow.SetReadDeadline(time.Now().Add(10*time.Second)))
	rest, err := io.ReadAll(slow)
	require.NoError(t, err, "closed by the server, not by our deadline")
	if len(rest) > 0 {
		require.Regexp(t, `^HTTP/1\.1 4\d\d `, string(rest))
	}
}
