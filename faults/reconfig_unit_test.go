package faults

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func cfgOf(version int64, roles map[int]string) ensembleConfig {
	return ensembleConfig{version: version, roles: roles}
}

// A clean log of the reconfig mode passes; each kind of bad log is caught
// by the check that says so.
func TestCheckReconfigLog(t *testing.T) {
	three := map[int]string{1: roleParticipant, 2: roleParticipant, 3: roleParticipant}
	four := map[int]string{1: roleParticipant, 2: roleParticipant, 3: roleParticipant, 4: roleObserver}
	add4 := reconfigOp{call: 10, ret: 20, kind: rcAddObserver, from: 0, incremental: true, known: true, code: "OK", zxid: 0x100000005,
		want: map[int]string{1: roleParticipant, 2: roleParticipant, 3: roleParticipant, 4: roleObserver, 5: ""}}
	refused := reconfigOp{call: 40, ret: 50, kind: rcRemoveFollower, from: 0x100000004, seen: 0x100000005, incremental: true, known: true, code: "BadVersion"}
	good := []configRead{
		{call: 1, ret: 2, mzxid: 0, config: cfgOf(0, three)},
		{call: 30, ret: 31, mzxid: 0x100000005, config: cfgOf(0x100000005, four)},
		{call: 60, ret: 61, mzxid: 0x100000005, config: cfgOf(0x100000005, four)},
	}
	require.Empty(t, checkReconfigLog([]reconfigOp{add4, refused}, good))

	// After a request without answer, which may commit later, the
	// version read before a request may be stale: BadVersion is legal.
	lost := reconfigOp{call: 21, ret: 22, kind: rcToObserver, from: 0x100000005, seen: 0x100000005, incremental: true, code: "unknown"}
	late := reconfigOp{call: 40, ret: 50, kind: rcRemoveFollower, from: 0x100000005, seen: 0x100000005, incremental: true, known: true, code: "BadVersion"}
	require.Empty(t, checkReconfigLog([]reconfigOp{add4, lost, late}, good))

	// A whole member list, the same change.
	whole := add4
	whole.incremental = false
	require.Empty(t, checkReconfigLog([]reconfigOp{whole}, good))

	cases := []struct {
		name  string
		ops   []reconfigOp
		reads []configRead
		want  string
	}{
		{"version is not mzxid", nil, []configRead{{call: 1, ret: 2, mzxid: 0x100000004, config: cfgOf(0x100000005, four)}}, "version=100000005 but mzxid 0x100000004"},
		{"version goes back", nil, []configRead{good[1], {call: 40, ret: 41, mzxid: 0, config: cfgOf(0, three)}}, "version went back"},
		{"acknowledged, later read older", []reconfigOp{add4}, []configRead{good[0], {call: 30, ret: 31, mzxid: 0, config: cfgOf(0, three)}}, "acknowledged, but read 1 (started after) has version 0"},
		{"acknowledged, change missing", []reconfigOp{add4}, []configRead{good[0], {call: 30, ret: 31, mzxid: 0x100000005, config: cfgOf(0x100000005, three)}}, `has s4 as "", asked "observer"`},
		{"whole list, extra member", []reconfigOp{whole}, []configRead{{call: 30, ret: 31, mzxid: 0x100000005,
			config: cfgOf(0x100000005, map[int]string{1: roleParticipant, 2: roleParticipant, 3: roleParticipant, 4: roleObserver, 6: roleObserver})}}, "has other members"},
		{"BadVersion from the current version", []reconfigOp{{call: 1, ret: 2, kind: rcRemoveLeader, from: 5, seen: 5, known: true, code: "BadVersion"}}, nil, "BadVersion, but version 5 was current"},
		{"OK from a stale version", []reconfigOp{{call: 1, ret: 2, kind: rcRemoveLeader, from: 4, seen: 5, known: true, code: "OK", zxid: 9}}, nil, "accepted from version 4"},
		{"unexpected answer", []reconfigOp{{call: 1, ret: 2, kind: rcRemoveLeader, known: true, code: "BadArguments"}}, nil, "an answer no reconfig of this mode should get"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := checkReconfigLog(c.ops, c.reads)
			require.Len(t, got, 1, "%q", got)
			require.Contains(t, got[0], c.want)
		})
	}
}

// parseServerLines reads /zookeeper/config's data as the servers write it.
func TestParseServerLines(t *testing.T) {
	ec, err := parseServerLines("server.1=127.0.0.1:1:2:participant;127.0.0.1:3\nserver.4=127.0.0.1:5:6:observer;127.0.0.1:7\nversion=10000002a")
	require.NoError(t, err)
	require.Equal(t, int64(0x10000002a), ec.version)
	require.Equal(t, map[int]string{1: roleParticipant, 4: roleObserver}, ec.roles)
	require.Equal(t, []int{1}, ec.voters())
	_, err = parseServerLines("server.x=1:2:3\n")
	require.Error(t, err)
}

// treeDiff names what differs between two servers' trees, and nothing for
// equal ones: the convergence check can fail.
func TestTreeDiff(t *testing.T) {
	a := map[string]treeNode{"/": {}, "/a": {mzxid: 5, version: 1, data: dataSum([]byte("x"))}}
	b := map[string]treeNode{"/": {}, "/a": {mzxid: 5, version: 1, data: dataSum([]byte("x"))}}
	require.Empty(t, treeDiff(a, b))
	b["/a"] = treeNode{mzxid: 5, version: 1, data: dataSum([]byte("y"))}
	b["/b"] = treeNode{}
	d := treeDiff(a, b)
	require.True(t, strings.Contains(d, "/a ") && strings.Contains(d, "/b extra"), d)
	delete(b, "/a")
	require.Contains(t, treeDiff(a, b), "/a missing")
}
