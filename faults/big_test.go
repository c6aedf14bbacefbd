package faults

import (
	"bytes"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/linearizability"
)

// Big values. -faults.big sessions set, create, delete and read values from
// 64 KiB up to the largest a request may carry under jute.maxbuffer (a
// quarter of the writes exactly that largest), on keys of their own, while
// the faults run: they go through the leader's log, the followers' DIFF
// and SNAP syncs and the wiped servers' resyncs like any other write. The
// history records a value as its tag and length ("w<id>-<seq>:<bytes>");
// a read records the tag of the value it got only if every byte is the
// one the tagged write sent, so Porcupine and the acknowledged-writes
// check judge big values exactly like small ones, and a torn or mixed
// value is a read of something nobody wrote.

var faultsBig = flag.Int("faults.big", 1,
	"sessions that set and read values of 64 KiB up to jute.maxbuffer on keys of their own (0: none)")

// juteMaxBuffer is the servers' jute.maxbuffer: the harness's zoo.cfg
// leaves the default (0xfffff, ZooKeeper's too), the largest request frame
// a server reads.
const juteMaxBuffer = 0xfffff

// Sizes of request fields around a value: the request header (xid, type),
// the path and the data (each with its length), setData's version, and
// create's world:anyone ACL and flags.
const (
	reqHeaderLen = 4 + 4
	worldACLLen  = 4 + (4 + 4 + len("world") + 4 + len("anyone"))
)

// maxSetValue and maxCreateValue are the largest values a setData or a
// create of path can carry in a request of juteMaxBuffer bytes.
func maxSetValue(path string) int { return juteMaxBuffer - (reqHeaderLen + 4 + len(path) + 4 + 4) }
func maxCreateValue(path string) int {
	return juteMaxBuffer - (reqHeaderLen + 4 + len(path) + 4 + worldACLLen + 4)
}

const minBigValue = 64 << 10

// bigIDs number the big writers' sessions.
const bigIDs = 3 << 20

func bigParent(i int) string { return fmt.Sprintf("/big%d", i) }
func bigKey(i, k int) string { return fmt.Sprintf("/big%d/k%d", i, k) }

// bigPaths lists the keys of n big writers.
func bigPaths(n int) []string {
	var out []string
	for i := range n {
		for k := range keysPerGroup {
			out = append(out, bigKey(i, k))
		}
	}
	return out
}

func isBigPath(p string) bool { return strings.HasPrefix(p, "/big") }

// bigValue returns a value of n bytes: tag, ':', n, '|', then bytes drawn
// from a hash of that header, so two values differ all along and a cut
// one does not pass for a shorter value.
func bigValue(tag string, n int) []byte {
	b := make([]byte, n)
	hdr := fmt.Sprintf("%s:%d|", tag, n)
	k := copy(b, hdr)
	h := fnv.New64a()
	h.Write([]byte(hdr))
	x := h.Sum64() | 1
	for i := k; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// bigRecord is what the history records for a big value: its header
// ("tag:length") if it is a whole value bigValue made, else a mark of its
// length and damage that no write recorded.
func bigRecord(b []byte) []byte {
	if i := bytes.IndexByte(b, '|'); i > 0 {
		if tag, _, ok := strings.Cut(string(b[:i]), ":"); ok && bytes.Equal(b, bigValue(tag, len(b))) {
			return bytes.Clone(b[:i])
		}
	}
	return fmt.Appendf(nil, "corrupt:%d:%.20q", len(b), b)
}

// recordedData is what the history records for data read from path: big
// values by their record, the rest as they are.
func recordedData(path string, data []byte) []byte {
	if isBigPath(path) {
		return bigRecord(data)
	}
	return append([]byte{}, data...)
}

// bigStats sums up what the big writers did.
type bigStats struct {
	mu                          sync.Mutex
	writes, acked, reads, atMax int
	maxAcked                    int
	corrupt                     []string
	corruptAt                   []int64
}

func (s *bigStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("big values: %d writes (%d acknowledged, %d of them at the largest size, largest acknowledged %d bytes; jute.maxbuffer %d), %d reads of big values, %d damaged",
		s.writes, s.acked, s.atMax, s.maxAcked, juteMaxBuffer, s.reads, len(s.corrupt))
}

// runBig runs big writer i until stop closes.
func runBig(w *worker, i int, stats *bigStats, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(uint64(w.ID), 0xb16))
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		sess := w.WaitSession(stop)
		if sess == 0 {
			return
		}
		key := bigKey(i, rng.IntN(keysPerGroup))
		switch r := rng.IntN(100); {
		case r < 35:
			w.bigWrite(sess, key, false, rng, stats)
		case r < 50:
			w.bigWrite(sess, key, true, rng, stats)
		case r < 58:
			w.delete(sess, key)
		default:
			op := w.Sync(sess, key)
			if !op.Completed() || op.Err != linearizability.ErrOK {
				continue
			}
			g := w.get(sess, key, false)
			if g.Completed() && g.Err == linearizability.ErrOK {
				stats.mu.Lock()
				stats.reads++
				if bytes.HasPrefix(g.RespData, []byte("corrupt:")) {
					stats.corrupt = append(stats.corrupt, fmt.Sprintf("%s read %s", key, g.String()))
					stats.corruptAt = append(stats.corruptAt, g.Return)
				}
				stats.mu.Unlock()
			}
		}
	}
}

// bigWrite sets (or creates) key to a big value.
func (w *worker) bigWrite(sess int64, key string, create bool, rng *rand.Rand, stats *bigStats) {
	limit := maxSetValue(key)
	if create {
		limit = maxCreateValue(key)
	}
	n := limit
	if rng.IntN(4) != 0 {
		n = minBigValue + rng.IntN(limit-minBigValue)
	}
	tag := fmt.Sprintf("w%d-%d", w.ID, w.Seq())
	value := bigValue(tag, n)
	op := linearizability.Op{Session: sess, Path: key, Data: bigRecord(value), Version: -1}
	if create {
		op.Kind = linearizability.Create
		op, _ = w.Do(op, func(op *linearizability.Op) error {
			name, err := w.Conn.Create(key, value, 0, zk.WorldACL(zk.PermAll))
			if err == nil {
				op.Name = name
				w.versions[key] = 0
			}
			return err
		})
	} else {
		op.Kind = linearizability.SetData
		if v, ok := w.versions[key]; ok && rng.IntN(4) != 0 {
			op.Version = v
		}
		op, _ = w.Do(op, func(op *linearizability.Op) error {
			st, err := w.Conn.Set(key, value, op.Version)
			if err == nil && st != nil {
				op.StatVersion, op.Mzxid, op.Czxid = st.Version, st.Mzxid, st.Czxid
				w.versions[key] = st.Version
			}
			return err
		})
	}
	stats.mu.Lock()
	defer stats.mu.Unlock()
	stats.writes++
	if op.Completed() && op.Err == linearizability.ErrOK {
		stats.acked++
		stats.maxAcked = max(stats.maxAcked, n)
		if n == limit {
			stats.atMax++
		}
	}
}

// findings reports every damaged big value read.
func (s *bigStats) findings() []finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []finding
	for i, c := range s.corrupt {
		out = append(out, finding{check: checkBig, at: s.corruptAt[i], msg: "damaged big value: " + c})
	}
	return out
}
