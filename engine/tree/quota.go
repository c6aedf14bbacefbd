package tree

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/zabkeeper/zabkeeper/proto"
)

// Quotas as ZooKeeper 3.7+ keeps them (Quotas, StatsTrack and DataTree in
// apache/zookeeper): a quota on path P lives in the ordinary znodes
// /zookeeper/quota/P/zookeeper_limits (the limits, written by the client's
// setquota) and /zookeeper/quota/P/zookeeper_stats (the subtree's node
// count and data bytes, kept by the tree as txns apply). Both hold
// StatsTrack text: "count=N,bytes=N" then, when hard limits are present,
// "=;byteHardLimit=N;countHardLimit=N" (keys sorted). A limit of -1 is none.
//
// The stats change only when txns apply, identically on every replica, so
// they are part of the digest like any data. Prepare checks a create or a
// setData against the stats of its quota plus the changes already prepared
// ahead of it; past a hard limit with Options.EnforceQuota the request fails
// with QuotaExceeded (-125), as ZooKeeper's zookeeper.enforceQuota does; any
// other excess is reported as a QuotaWarning for the caller to log.

// Quota node names, as ZooKeeper's Quotas.
const (
	quotaLimitNode = "zookeeper_limits"
	quotaStatNode  = "zookeeper_stats"
)

// QuotaWarning is a write that took a subtree past one of its limits.
type QuotaWarning struct {
	// Quota is the path the quota is set on; Path the path written.
	Quota, Path string
	// What is "count" or "bytes"; Value the figure after the write; Limit
	// the limit exceeded; Hard whether it is a hard limit.
	What   string
	Value  int64
	Limit  int64
	Hard   bool
	Denied bool // the write was refused (QuotaExceeded)
}

// String describes the warning as ZooKeeper's log line does.
func (w QuotaWarning) String() string {
	kind := "soft"
	if w.Hard {
		kind = "hard"
	}
	return fmt.Sprintf("Quota exceeded: %s [current %s=%d, %s limit=%d] by %s", w.Quota, w.What, w.Value, kind, w.Limit, w.Path)
}

// maxQuotaWarnings bounds the warnings kept for a caller that never takes
// them.
const maxQuotaWarnings = 256

// TakeQuotaWarnings returns and forgets the warnings of writes prepared
// since the last call.
func (t *Tree) TakeQuotaWarnings() []QuotaWarning {
	w := t.quotaWarnings
	t.quotaWarnings = nil
	return w
}

// statsTrack is ZooKeeper's StatsTrack: named figures, -1 when absent.
type statsTrack map[string]int64

// parseStatsTrack reads StatsTrack text leniently: pairs separated by ',' or
// ';', key=value, a value that does not parse counts as absent.
func parseStatsTrack(b []byte) statsTrack {
	st := statsTrack{}
	for _, pair := range strings.FieldsFunc(string(b), func(r rune) bool { return r == ',' || r == ';' }) {
		k, v, _ := strings.Cut(pair, "=")
		v, _, _ = strings.Cut(v, "=") // "bytes=-1=" keeps old parsers off the new keys
		if k == "" {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			st[k] = n
		}
	}
	return st
}

func (st statsTrack) get(k string) int64 {
	if v, ok := st[k]; ok {
		return v
	}
	return -1
}

// bytes formats the figures as StatsTrack.toString does.
func (st statsTrack) bytes() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "count=%d,bytes=%d", st.get("count"), st.get("bytes"))
	var rest []string
	for k := range st {
		if k != "count" && k != "bytes" {
			rest = append(rest, k)
		}
	}
	if len(rest) > 0 {
		slices.Sort(rest)
		b.WriteByte('=')
		for _, k := range rest {
			fmt.Fprintf(&b, ";%s=%d", k, st[k])
		}
	}
	return []byte(b.String())
}

// quotaPaths returns the paths of the limits and stats nodes of a quota on p.
func quotaPaths(p string) (limits, stats string) {
	return quotaPath + p + "/" + quotaLimitNode, quotaPath + p + "/" + quotaStatNode
}

// indexQuota keeps the set of quota'd paths as limits nodes come and go
// (ZooKeeper's pTrie); called by putNode and removeNode, so a loaded
// snapshot rebuilds it.
func (t *Tree) indexQuota(path string, present bool) {
	if !strings.HasPrefix(path, quotaPath+"/") || !strings.HasSuffix(path, "/"+quotaLimitNode) {
		return
	}
	p := strings.TrimSuffix(strings.TrimPrefix(path, quotaPath), "/"+quotaLimitNode)
	if p == "" {
		return
	}
	if present {
		t.quotas[p] = struct{}{}
	} else {
		delete(t.quotas, p)
	}
}

// quotaRoot returns the deepest quota'd path at or above path, "" for none.
// The root and the quota nodes themselves are never counted.
func (t *Tree) quotaRoot(path string) string {
	if len(t.quotas) == 0 || path == rootPath || path == quotaPath || strings.HasPrefix(path, quotaPath+"/") {
		return ""
	}
	for p := path; p != rootPath && p != ""; p, _ = splitPath(p) {
		if _, ok := t.quotas[p]; ok {
			return p
		}
	}
	return ""
}

// quotaApplied updates the stats of the quota over path after a txn
// applied a change of count nodes and bytes of data there. Creating a stats
// node counts its whole subtree, as ZooKeeper's updateQuotaForPath.
func (t *Tree) quotaApplied(path string, count, bytes int64) {
	if strings.HasPrefix(path, quotaPath+"/") && strings.HasSuffix(path, "/"+quotaStatNode) && count > 0 {
		p := strings.TrimSuffix(strings.TrimPrefix(path, quotaPath), "/"+quotaStatNode)
		if p != "" {
			t.recountQuota(p)
		}
		return
	}
	root := t.quotaRoot(path)
	if root == "" || (count == 0 && bytes == 0) {
		return
	}
	_, statPath := quotaPaths(root)
	sn := t.node(statPath)
	if sn == nil {
		return // ZooKeeper logs "Missing node for stat" and goes on
	}
	st := parseStatsTrack(sn.data)
	st["count"] = st.get("count") + count
	st["bytes"] = st.get("bytes") + bytes
	t.setQuotaStats(statPath, sn, st)
}

// recountQuota sets the stats of the quota on p from its subtree.
func (t *Tree) recountQuota(p string) {
	_, statPath := quotaPaths(p)
	sn := t.node(statPath)
	if sn == nil {
		return
	}
	var count, bytes int64
	var walk func(string)
	walk = func(q string) {
		n := t.node(q)
		if n == nil {
			return
		}
		count++
		bytes += int64(len(n.data))
		for id := range t.children(q).all() {
			walk(q + "/" + string(t.st.name(id)))
		}
	}
	walk(p)
	st := parseStatsTrack(sn.data)
	st["count"], st["bytes"] = count, bytes
	t.setQuotaStats(statPath, sn, st)
}

// setQuotaStats replaces the stats node's data, its Stat unchanged (as
// ZooKeeper updates it in place, without a version).
func (t *Tree) setQuotaStats(statPath string, sn *node, st statsTrack) {
	cp := *sn
	cp.data = st.bytes()
	t.putNode(statPath, &cp)
}

// checkQuota judges a prepared create (count 1) or setData (count 0) at
// path that changes the data by bytes, against the stats of its quota plus
// every change prepared ahead of it. It returns QuotaExceeded past a hard
// limit when quotas are enforced, and notes a warning for any excess.
func (t *Tree) checkQuota(path string, count, bytes int64) proto.ErrCode {
	root := t.quotaRoot(path)
	if root == "" {
		return proto.ErrOK
	}
	limitPath, statPath := quotaPaths(root)
	ln, _ := t.lookup(limitPath)
	sn, _ := t.lookup(statPath)
	if ln == nil || sn == nil {
		return proto.ErrOK
	}
	limits, stats := parseStatsTrack(ln.data), parseStatsTrack(sn.data)
	pc, pb := t.pendingQuotaDelta(root)
	code := proto.ErrOK
	check := func(what string, diff, cur, soft, hard int64) {
		if diff == 0 || (soft < 0 && hard < 0) {
			return
		}
		v := cur + diff
		w := QuotaWarning{Quota: root, Path: path, What: what, Value: v}
		switch {
		case hard >= 0 && v > hard:
			w.Limit, w.Hard = hard, true
			if t.opts.EnforceQuota {
				w.Denied, code = true, proto.ErrQuotaExceeded
			}
		case soft >= 0 && v > soft:
			w.Limit = soft
		default:
			return
		}
		if len(t.quotaWarnings) < maxQuotaWarnings {
			t.quotaWarnings = append(t.quotaWarnings, w)
		}
	}
	check("count", count, stats.get("count")+pc, limits.get("count"), limits.get("countHardLimit"))
	check("bytes", bytes, stats.get("bytes")+pb, limits.get("bytes"), limits.get("byteHardLimit"))
	return code
}

// pendingQuotaDelta sums what the changes prepared but not applied do to
// the node count and data bytes under root.
func (t *Tree) pendingQuotaDelta(root string) (count, bytes int64) {
	for _, c := range t.pending.log {
		if c.path != root && !strings.HasPrefix(c.path, root+"/") {
			continue
		}
		before := t.node(c.path)
		if c.hadPrev {
			before = nil
			if c.prev != nil {
				before = c.prev.n
			}
		}
		if before != nil {
			count--
			bytes -= int64(len(before.data))
		}
		if c.n != nil {
			count++
			bytes += int64(len(c.n.data))
		}
	}
	return count, bytes
}
