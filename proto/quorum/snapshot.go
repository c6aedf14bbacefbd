package quorum

import (
	"fmt"
	"io"
)

// The SNAP body: after QuorumPacket(SNAP) the leader writes
// ZKDatabase.serializeSnapshot to the same stream, then the ustring
// "BenWasHere". It has no length prefix, so a learner must walk its
// structure to find its end:
//
//	int count; count × (long sessionId, int timeoutMs)          sessions
//	int count; count × (long aclId, vector<ACL>)                ACL cache
//	repeated: ustring path, DataNode {buffer data; long aclId;   nodes, root "" first
//	          StatPersisted (60 bytes)}, until path "/"
//	ustring "BenWasHere"
//
// No FileHeader, seals or digest: those belong to snapshot files only.

// SnapSignature ends every SNAP body (Learner.syncWithLeader: "Missing
// signature" otherwise).
const SnapSignature = "BenWasHere"

// statPersistedLen is StatPersisted's size: 4 longs... czxid, mzxid,
// ctime, mtime (32), version, cversion, aversion (12), ephemeralOwner,
// pzxid (16).
const statPersistedLen = 60

// SnapLimits bound a SNAP body. Zero fields take the defaults.
type SnapLimits struct {
	// MaxBytes bounds the whole body. Default 4 GiB.
	MaxBytes int64
	// MaxField bounds each path, data buffer and ACL string. Default
	// DefaultMaxData.
	MaxField int
	// MaxACLs bounds one ACL vector. Default 65536.
	MaxACLs int
	// KeepPaths makes SnapSummary.Paths list every node (tests and
	// tools; a learner loading millions of nodes leaves it off).
	KeepPaths bool
}

func (l SnapLimits) withDefaults() SnapLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 4 << 30
	}
	if l.MaxField <= 0 {
		l.MaxField = DefaultMaxData
	}
	if l.MaxACLs <= 0 {
		l.MaxACLs = 65536
	}
	return l
}

// SnapSummary describes a SNAP body that was read.
type SnapSummary struct {
	// Sessions are the live sessions with their timeouts.
	Sessions []Touch
	// ACLs is the number of ACL cache entries.
	ACLs int
	// Nodes is the number of nodes, the root included.
	Nodes int
	// Paths are the nodes in stream order, the root as "" (only with
	// SnapLimits.KeepPaths).
	Paths []string
	// Bytes is the body's length, signature included.
	Bytes int64
}

// limitedReader fails with ErrTooLarge once more than max bytes are read.
type limitedReader struct {
	r    io.Reader
	left int64
	max  int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("%w: SNAP body exceeds limit %d bytes", ErrTooLarge, l.max)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// CopySnapshotBody reads the SNAP body that follows a SNAP packet on r,
// copies its bytes (signature included) to dst when dst is not nil, and
// returns what it found. Every count and length is checked against lim
// and against the bytes that actually arrive; nothing is allocated for a
// claimed size.
func CopySnapshotBody(dst io.Writer, r io.Reader, lim SnapLimits) (SnapSummary, error) {
	lim = lim.withDefaults()
	s := &reader{r: &limitedReader{r: r, left: lim.MaxBytes, max: lim.MaxBytes}, tee: dst}
	var sum SnapSummary
	fail := func(what string) (SnapSummary, error) {
		err := s.err
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return SnapSummary{}, fmt.Errorf("quorum: SNAP body %s: %w", what, err)
	}
	n := s.int32()
	if s.err != nil {
		return fail("session count")
	}
	if n < 0 {
		return SnapSummary{}, fmt.Errorf("%w: SNAP body session count %d", ErrMalformed, n)
	}
	for i := int32(0); i < n && s.err == nil; i++ {
		t := Touch{Session: s.int64(), Timeout: s.int32()}
		if s.err == nil {
			sum.Sessions = append(sum.Sessions, t)
		}
	}
	if s.err != nil {
		return fail("sessions")
	}
	acls := s.int32()
	if s.err == nil && acls < 0 {
		return SnapSummary{}, fmt.Errorf("%w: SNAP body ACL cache count %d", ErrMalformed, acls)
	}
	for i := int32(0); i < acls && s.err == nil; i++ {
		s.int64() // acl id
		k := s.count("SNAP body ACL", lim.MaxACLs)
		for j := 0; j < k && s.err == nil; j++ {
			s.int32() // perms
			s.skipField("SNAP body ACL scheme", lim.MaxField)
			s.skipField("SNAP body ACL id", lim.MaxField)
		}
		sum.ACLs++
	}
	if s.err != nil {
		return fail("ACL cache")
	}
	for s.err == nil {
		path := s.str("SNAP body node path", lim.MaxField)
		if s.err != nil || path == "/" {
			break
		}
		s.skipField("SNAP body node data", lim.MaxField)
		s.skip(8 + statPersistedLen) // acl id, StatPersisted
		if s.err == nil {
			sum.Nodes++
			if lim.KeepPaths {
				sum.Paths = append(sum.Paths, path)
			}
		}
	}
	if s.err != nil {
		return fail("nodes")
	}
	sig := s.str("SNAP body signature", 64)
	if s.err != nil {
		return fail("signature")
	}
	if sig != SnapSignature {
		return SnapSummary{}, fmt.Errorf("%w: SNAP body signature %q, want %q", ErrMalformed, sig, SnapSignature)
	}
	sum.Bytes = s.n
	return sum, nil
}

// skipField reads past a jute buffer or string without keeping it.
func (s *reader) skipField(what string, limit int) {
	n, ok := s.length(what, "length", limit)
	if ok && n > 0 {
		s.skip(n)
	}
}
