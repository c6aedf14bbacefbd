package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zabkeeper/zabkeeper/disk"
	"github.com/zabkeeper/zabkeeper/engine/tree"
	"github.com/zabkeeper/zabkeeper/proto"
)

const logUsage = `Usage: zabkeeper log dump [--data] FILE...

Prints every txn of transaction log files (zabkeeper's or Apache
ZooKeeper's: the same format) in readable form, one line each, as
ZooKeeper's TxnLogToolkit does: time, session, cxid, zxid, type, the txn
record and its digest, then how the file's data ends (end of file, zero
fill, a torn record, a corrupt record) and at which offset. It only reads
the files. Exit status 1 if a file cannot be read or is corrupt.

Flags:
`

// runLog runs "zabkeeper log ...".
func runLog(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "dump" {
		fmt.Fprint(stderr, logUsage)
		return 2
	}
	fs := flag.NewFlagSet("log dump", flag.ContinueOnError)
	fs.SetOutput(stderr)
	showData := fs.Bool("data", false, "print data in full (default: at most 64 bytes)")
	fs.Usage = func() {
		fmt.Fprint(stderr, logUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	status := 0
	for _, path := range fs.Args() {
		if err := dumpLog(stdout, path, *showData); err != nil {
			fmt.Fprintf(stderr, "zabkeeper: %v\n", err)
			status = 1
		}
	}
	return status
}

// dumpLog prints one log file.
func dumpLog(out io.Writer, path string, showData bool) error {
	fmt.Fprintf(out, "Transaction log %s (ZooKeeper format version 2)\n", path)
	bad := false
	end, err := disk.ScanLogFile(nil, path, func(r disk.Record, off int64) error {
		txn, err := tree.UnmarshalTxn(r.Data)
		if err != nil {
			fmt.Fprintf(out, "@%d zxid 0x%x: undecodable txn (%d bytes): %v\n", off, r.Zxid, len(r.Data), err)
			bad = true
			return nil
		}
		fmt.Fprintf(out, "@%d %s\n", off, FormatTxn(txn, showData))
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d txns, data ends at offset %d of %d: %s", end.Records, end.Offset, end.Size, end.Kind)
	if end.Fault != "" {
		fmt.Fprintf(out, " (%s)", end.Fault)
	}
	fmt.Fprintln(out)
	if end.Kind == "corrupt record" {
		return fmt.Errorf("%s: corrupt record at offset %d: %s", path, end.Offset, end.Fault)
	}
	if bad {
		return fmt.Errorf("%s: some txns do not decode", path)
	}
	return nil
}

// FormatTxn renders a txn on one line: time, session, cxid, zxid, type
// (ours: for moveSession and sync, which ZooKeeper's tools show as
// createSession and error), record, digest.
func FormatTxn(t *tree.Txn, showData bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s session 0x%x cxid 0x%x zxid 0x%x %s", time.UnixMilli(t.Time).UTC().Format("2006-01-02T15:04:05.000Z"),
		t.SessionID, uint32(t.Cxid), t.Zxid, opName(t.Type))
	if body := formatBody(t, showData); body != "" {
		b.WriteString(" ")
		b.WriteString(body)
	}
	if t.DigestVersion != 0 {
		fmt.Fprintf(&b, " digest=v%d:0x%x", t.DigestVersion, t.Digest)
	}
	return b.String()
}

func opName(op proto.OpCode) string {
	if op == tree.OpMoveSession {
		return "moveSession"
	}
	return op.String()
}

// formatBody renders the record of a txn (or of a multi's op).
func formatBody(t *tree.Txn, showData bool) string {
	switch t.Type {
	case proto.OpCreate, proto.OpCreate2, proto.OpCreateContainer, proto.OpCreateTTL:
		s := fmt.Sprintf("%s data=%s acl=%s mode=%s parentCversion=%d", t.Path, formatData(t.Data, showData), formatACL(t.ACL), modeName(t.Mode), t.ParentCversion)
		if t.Type == proto.OpCreateTTL || t.Mode == proto.ModePersistentWithTTL {
			s += fmt.Sprintf(" ttl=%d", t.TTL)
		}
		return s
	case proto.OpDelete, proto.OpDeleteContainer, proto.OpSync:
		return t.Path
	case proto.OpSetData:
		return fmt.Sprintf("%s data=%s version=%d", t.Path, formatData(t.Data, showData), t.Version)
	case proto.OpSetACL:
		return fmt.Sprintf("%s acl=%s aversion=%d", t.Path, formatACL(t.ACL), t.Version)
	case proto.OpCheck:
		return fmt.Sprintf("%s version=%d", t.Path, t.Version)
	case proto.OpMulti:
		ops := make([]string, len(t.Ops))
		for i := range t.Ops {
			ops[i] = opName(t.Ops[i].Type)
			if body := formatBody(&t.Ops[i], showData); body != "" {
				ops[i] += " " + body
			}
		}
		return "[" + strings.Join(ops, "; ") + "]"
	case proto.OpCreateSession, tree.OpMoveSession:
		s := fmt.Sprintf("timeout=%d", t.TimeOut)
		if t.Owner != 0 {
			s += fmt.Sprintf(" owner=%d", t.Owner)
		}
		return s
	case proto.OpCloseSession:
		return "ephemerals=[" + strings.Join(t.Paths, " ") + "]"
	case proto.OpError:
		return fmt.Sprintf("%d (%v)", int32(t.Err), t.Err)
	}
	return ""
}

func modeName(m int32) string {
	switch m {
	case proto.ModePersistent:
		return "persistent"
	case proto.ModeEphemeral:
		return "ephemeral"
	case proto.ModeContainer:
		return "container"
	case proto.ModePersistentWithTTL:
		return "ttl"
	}
	return strconv.Itoa(int(m))
}

func formatACL(acl []proto.ACL) string {
	parts := make([]string, len(acl))
	for i, a := range acl {
		parts[i] = fmt.Sprintf("%s:%s:%d", a.Id.Scheme, a.Id.ID, a.Perms)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// formatData quotes data as Go does when it is valid UTF-8, else hex; at
// most 64 bytes unless full.
func formatData(d []byte, full bool) string {
	if d == nil {
		return "null"
	}
	suffix := ""
	if !full && len(d) > 64 {
		suffix = fmt.Sprintf("...(%d bytes)", len(d))
		d = d[:64]
	}
	if utf8.Valid(d) {
		return strconv.Quote(string(d)) + suffix
	}
	return fmt.Sprintf("0x%x", d) + suffix
}
