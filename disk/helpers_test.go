package disk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/stretchr/testify/require"
)

// tb is what the helpers need of a *testing.T or *rapid.T.
type tb interface {
	require.TestingT
	Helper()
}

// quiet is a logger for tests that expect warnings.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// warnings is a logger that records the messages it gets.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.msgs = append(w.msgs, string(p))
		return len(p), nil
	}), nil))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// txnPayload returns a log payload for zxid: a TxnHeader (session 0x100,
// cxid and time derived from the zxid, type error) followed by body.
func txnPayload(z int64, body []byte) []byte {
	b := make([]byte, TxnHeaderSize, TxnHeaderSize+len(body))
	binary.BigEndian.PutUint64(b[0:], 0x100)
	binary.BigEndian.PutUint32(b[8:], uint32(z))
	binary.BigEndian.PutUint64(b[12:], uint64(z))
	binary.BigEndian.PutUint64(b[20:], uint64(1700000000000+z))
	binary.BigEndian.PutUint32(b[28:], 0xffffffff)
	return append(b, body...)
}

// rec returns a record for zxid whose payload is derived from it.
func rec(z int64) Record {
	return Record{Zxid: z, Data: txnPayload(z, bytes.Repeat([]byte(fmt.Sprintf("txn-%x;", z)), int(z%7)+1))}
}

// encodeRecord returns r as the log frames it.
func encodeRecord(r Record) []byte {
	var h [recordPrefixSize]byte
	encodeRecordPrefix(&h, r)
	return append(append(h[:], r.Data...), eorByte)
}

// recs returns records for zxids from..to.
func recs(from, to int64) []Record {
	var out []Record
	for z := from; z <= to; z++ {
		out = append(out, rec(z))
	}
	return out
}

// readAll returns every record in l.
func readAll(t tb, l *Log, after int64) []Record {
	t.Helper()
	var out []Record
	require.NoError(t, l.ReadFrom(after, func(r Record) error {
		out = append(out, r)
		return nil
	}))
	return out
}

// requireRecords checks that got holds exactly want.
func requireRecords(t tb, want, got []Record) {
	t.Helper()
	require.Equal(t, len(want), len(got), "record count")
	for i := range want {
		require.Equal(t, want[i].Zxid, got[i].Zxid, "zxid of record %d", i)
		require.Equal(t, want[i].Data, got[i].Data, "data of record %d (zxid %#x)", i, want[i].Zxid)
	}
}
