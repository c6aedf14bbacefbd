package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			http.Error(w, "not serving: no quorum", http.StatusServiceUnavailable)
		case "/livez":
			_, _ = w.Write([]byte("ok\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	// A port nothing listens on: bind one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String() + "/livez"
	require.NoError(t, ln.Close())

	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{args: []string{srv.URL + "/livez"}, code: 0, stdout: "200 ok"},
		{args: []string{srv.URL + "/readyz"}, code: 1, stdout: "503 not serving: no quorum"},
		{args: []string{"-q", srv.URL + "/readyz"}, code: 1},
		{args: []string{srv.URL + "/nope"}, code: 1, stdout: "404"},
		{args: []string{closed}, code: 1, stdout: "connection refused"},
		{args: nil, code: 2, stderr: "Usage: zabkeeper probe"},
		{args: []string{"ftp://127.0.0.1/x"}, code: 2, stderr: "want an http://host:port/path URL"},
		{args: []string{"127.0.0.1:7181/readyz"}, code: 2, stderr: "want an http://host:port/path URL"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"probe"}, tc.args...), &stdout, &stderr)
		require.Equal(t, tc.code, code, "%v: %s %s", tc.args, stdout.String(), stderr.String())
		require.Contains(t, stdout.String(), tc.stdout, "%v", tc.args)
		require.Contains(t, stderr.String(), tc.stderr, "%v", tc.args)
		if tc.stdout == "" {
			require.Empty(t, stdout.String(), "%v", tc.args)
		}
	}
}
