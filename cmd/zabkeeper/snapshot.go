package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

// runSnapshot implements "zabkeeper snapshot dump FILE": it verifies a
// snapshot file (zabkeeper's or Apache ZooKeeper's: they are the same
// format, plain, .gz or .snappy) and prints its nodes, sessions and digest,
// in the spirit of ZooKeeper's SnapshotFormatter.
func runSnapshot(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintf(stderr, "Usage: zabkeeper snapshot dump [-d] FILE\n\n"+
			"Verifies a snapshot file (version-2/snapshot.<zxid>[.gz|.snappy], written by zabkeeper or\n"+
			"Apache ZooKeeper) and prints every node with its Stat and ACL, the sessions and the digest.\n\nFlags:\n")
	}
	if len(args) == 0 || args[0] != "dump" {
		usage()
		return 2
	}
	fs := flag.NewFlagSet("snapshot dump", flag.ContinueOnError)
	fs.SetOutput(stderr)
	withData := fs.Bool("d", false, "print each node's data too (quoted)")
	fs.Usage = func() { usage(); fs.PrintDefaults() }
	if code, ok := parseFlags(fs, args[1:], "", stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if err := dumpSnapshot(fs.Arg(0), *withData, stdout); err != nil {
		fmt.Fprintf(stderr, "zabkeeper: snapshot dump: %v\n", err)
		return 1
	}
	return 0
}

func dumpSnapshot(path string, withData bool, w io.Writer) error {
	zxid, body, err := disk.OpenSnapshot(path)
	if err != nil {
		return err
	}
	defer body.Close()
	ls, err := tree.ReadSnapshot(body, tree.Options{ExtendedTypes: true}, zxid)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tr := ls.Tree
	fmt.Fprintf(w, "Snapshot %s: zxid %#x, %d nodes, %d sessions\n", filepath.Base(path), zxid, tr.NodeCount(), len(ls.Sessions))
	if k := tr.UnresolvedACLs(); k > 0 {
		// A fuzzy snapshot: the log after it gives these nodes their ACL.
		fmt.Fprintf(w, "%d nodes refer to an ACL the snapshot's ACL cache lacks (shown as zabkeeper:unresolved-acl): %v\n", k, tr.CheckACLs())
	}
	fmt.Fprintf(w, "ZNode Details (count=%d):\n", tr.NodeCount())
	super := tree.Caller{Auth: []proto.Id{{Scheme: "super"}}}
	var walk func(p string) error
	walk = func(p string) error {
		d, code := tr.Read(super, 0, proto.OpGetData, &proto.GetDataRequest{Path: p})
		if code != proto.ErrOK {
			return fmt.Errorf("read %s: error %d", p, code)
		}
		a, code := tr.Read(super, 0, proto.OpGetACL, &proto.GetACLRequest{Path: p})
		if code != proto.ErrOK {
			return fmt.Errorf("read ACL of %s: error %d", p, code)
		}
		c, code := tr.Read(super, 0, proto.OpGetChildren, &proto.GetChildrenRequest{Path: p})
		if code != proto.ErrOK {
			return fmt.Errorf("read children of %s: error %d", p, code)
		}
		data := d.(*proto.GetDataResponse)
		st := data.Stat
		fmt.Fprintf(w, "----\n%s\n", p)
		fmt.Fprintf(w, "  cZxid = %#016x\n  ctime = %s\n  mZxid = %#016x\n  mtime = %s\n  pZxid = %#016x\n",
			st.Czxid, msTime(st.Ctime), st.Mzxid, msTime(st.Mtime), st.Pzxid)
		fmt.Fprintf(w, "  cversion = %d\n  dataVersion = %d\n  aclVersion = %d\n  ephemeralOwner = %#016x\n  dataLength = %d\n  numChildren = %d\n",
			st.Cversion, st.Version, st.Aversion, st.EphemeralOwner, st.DataLength, st.NumChildren)
		var acls []string
		for _, acl := range a.(*proto.GetACLResponse).ACL {
			acls = append(acls, fmt.Sprintf("%s:%s:%s", acl.Id.Scheme, acl.Id.ID, perms(acl.Perms)))
		}
		fmt.Fprintf(w, "  acl = %s\n", strings.Join(acls, ","))
		if withData {
			fmt.Fprintf(w, "  data = %s\n", strconv.Quote(string(data.Data)))
		}
		children := slices.Clone(c.(*proto.GetChildrenResponse).Children)
		slices.Sort(children)
		for _, ch := range children {
			cp := p + "/" + ch
			if p == "/" {
				cp = "/" + ch
			}
			if err := walk(cp); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("/"); err != nil {
		return err
	}
	fmt.Fprintf(w, "----\nSession Details (sid, timeout, ephemeralCount):\n")
	for _, s := range ls.Sessions {
		fmt.Fprintf(w, "%#x, %d, %d\n", s.ID, s.Timeout, len(tr.Ephemerals(s.ID)))
	}
	fmt.Fprintf(w, "----\n")
	switch {
	case !ls.HasDigest:
		fmt.Fprintf(w, "Digest: none in the file\n")
	case ls.PendingDigest:
		fmt.Fprintf(w, "Digest: %d at zxid %#x (version %d), past the snapshot's zxid: checked once the log is replayed to it\n",
			int64(ls.Digest.Digest), ls.Digest.Zxid, ls.Digest.Version)
	case ls.Digest.Zxid == zxid && ls.Digest.Version == tree.DigestVersion:
		fmt.Fprintf(w, "Digest: %d at zxid %#x (version %d), matches the tree\n", int64(ls.Digest.Digest), ls.Digest.Zxid, ls.Digest.Version)
	default:
		fmt.Fprintf(w, "Digest: %d at zxid %#x (version %d), not checked (empty, older than the snapshot or another version)\n",
			int64(ls.Digest.Digest), ls.Digest.Zxid, ls.Digest.Version)
	}
	fmt.Fprintf(w, "Last zxid: %#x\n", zxid)
	return nil
}

func msTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// perms spells ACL permissions as zkCli does (c, d, r, w, a).
func perms(p int32) string {
	var b strings.Builder
	for _, x := range []struct {
		bit int32
		c   byte
	}{{proto.PermCreate, 'c'}, {proto.PermDelete, 'd'}, {proto.PermRead, 'r'}, {proto.PermWrite, 'w'}, {proto.PermAdmin, 'a'}} {
		if p&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}
