package faults

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/faults/load"
)

// Reconfiguration under faults (-faults.reconfig; issue 13). The ensemble
// runs with reconfigEnabled=true and -faults.spares servers beyond the
// -faults.servers members, not started. While the faults run, an operator
// session authenticated as super asks every 0.5–2 s for a random
// membership change: remove a follower or the leader (the leader hands
// over to a designated member), add a server as a participant or an
// observer (a spare started for it with the current members and itself in
// its zoo.cfg, as ZooKeeper's joiners are), turn a participant into an
// observer or back, remove an observer; incremental or a whole new member
// list, from the version it just read, from -1 or from a stale one. A
// server a committed reconfig removed is stopped most of the time (a
// scaled-down pod) and otherwise left running outside the ensemble. The
// answers BadVersion, NewConfigNoQuorum and ReconfigInProgress are legal
// outcomes, counted; a reconfig without answer (connection lost) is in
// doubt. The voters stay between 3 and the servers there are.
//
// Without proxies (a reconfiguration gives every member the same address
// of each other), the network fault kinds are out: kills, SIGSTOPs, wipes
// and idle gaps run with the reconfigs, each fault's victims drawn among
// the members of the moment and the ensemble's health judged against the
// configuration of the moment (the newest any server activated, read from
// the dynamic config files the servers write).
//
// On top of the usual checks: every member of the final configuration
// holds the same tree and the same /zookeeper/config; no session expired
// that the harness did not expire on purpose; the operator's reads of
// /zookeeper/config carry version = mzxid, versions never go back, a
// reconfig answered OK is in every later read at a version >= its zxid,
// and the read of its own version shows the change asked.

var (
	faultsReconfig = flag.Bool("faults.reconfig", false,
		"issue random reconfigs (opcode 16) against the ensemble while the faults run; the network fault kinds are left out")
	faultsSpares = flag.Int("faults.spares", 2, "with -faults.reconfig: servers beyond -faults.servers that reconfigs add")
)

// Roles in a server.N line.
const (
	roleParticipant = "participant"
	roleObserver    = "observer"
)

// reconfigSuper is the operator's credentials; reconfigCfgKeys enables
// reconfig and makes the operator super (its digest).
const (
	reconfigSuper   = "super:admin"
	reconfigCfgKeys = "reconfigEnabled=true\nDigestAuthenticationProvider.superDigest=super:xQJmxLMiHGwaqBvst5y6rkB6HQs=\n"
)

// networkKinds need the proxies the reconfig mode does without.
var networkKinds = []string{faultPartition, faultOneWay, faultSlow}

// serverLine is nd's server.N line with role.
func (nd *node) serverLine(role string) string {
	_, cp, _ := strings.Cut(nd.clientAddr, ":")
	return fmt.Sprintf("server.%d=127.0.0.1:%d:%d:%s;127.0.0.1:%s", nd.id, nd.quorumPort, nd.electionPort, role, cp)
}

// ensembleConfig is one configuration: its version and each member's role.
type ensembleConfig struct {
	version int64
	roles   map[int]string // server id -> participant or observer
}

func (ec ensembleConfig) voters() []int {
	var out []int
	for id, r := range ec.roles {
		if r == roleParticipant {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (ec ensembleConfig) String() string {
	ids := slices.Sorted(maps.Keys(ec.roles))
	var parts []string
	for _, id := range ids {
		s := fmt.Sprintf("s%d", id)
		if ec.roles[id] == roleObserver {
			s += "(obs)"
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("%x[%s]", ec.version, strings.Join(parts, " "))
}

// parseServerLines reads the server.N lines (and version=, hex) of a
// dynamic config file or of /zookeeper/config.
func parseServerLines(data string) (ensembleConfig, error) {
	ec := ensembleConfig{roles: map[int]string{}}
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "version="); ok {
			n, err := strconv.ParseInt(v, 16, 64)
			if err != nil {
				return ec, fmt.Errorf("config version %q: %w", v, err)
			}
			ec.version = n
			continue
		}
		rest, ok := strings.CutPrefix(line, "server.")
		if !ok {
			continue
		}
		ids, spec, ok := strings.Cut(rest, "=")
		if !ok {
			return ec, fmt.Errorf("config line %q", line)
		}
		id, err := strconv.Atoi(ids)
		if err != nil {
			return ec, fmt.Errorf("config line %q: %w", line, err)
		}
		addr, _, _ := strings.Cut(spec, ";")
		role := roleParticipant
		if strings.HasSuffix(addr, ":"+roleObserver) {
			role = roleObserver
		}
		ec.roles[id] = role
	}
	return ec, nil
}

// reconfigState is the cluster's side of the reconfig mode.
type reconfigState struct {
	initial ensembleConfig
	// pause is held (read) by the operator around each reconfig and
	// (write) by a wipe, which needs the members to stay put.
	pause sync.RWMutex
	// procMu guards busy, the servers (indices) the fault under way
	// holds: the operator starts or stops none of them, else a server a
	// fault killed and one the operator started for a reconfig would run
	// twice.
	procMu sync.Mutex
	busy   map[int]bool
}

// claim marks idx as held by the fault under way (reconfig mode only).
func (c *cluster) claim(idx []int) {
	if c.rc == nil {
		return
	}
	c.rc.procMu.Lock()
	defer c.rc.procMu.Unlock()
	if c.rc.busy == nil {
		c.rc.busy = map[int]bool{}
	}
	for _, i := range idx {
		c.rc.busy[i] = true
	}
}

// releaseAll ends the fault's hold on every server.
func (c *cluster) releaseAll() {
	if c.rc == nil {
		return
	}
	c.rc.procMu.Lock()
	defer c.rc.procMu.Unlock()
	clear(c.rc.busy)
}

// withFree runs f with server idx's process out of the faults' reach, and
// reports false (without running it) when a fault holds it.
func (c *cluster) withFree(idx int, f func()) bool {
	c.rc.procMu.Lock()
	defer c.rc.procMu.Unlock()
	if c.rc.busy[idx] {
		return false
	}
	f()
	return true
}

func newReconfigState(voters int) *reconfigState {
	ec := ensembleConfig{roles: map[int]string{}}
	for id := 1; id <= voters; id++ {
		ec.roles[id] = roleParticipant
	}
	return &reconfigState{initial: ec}
}

// membership is the newest configuration any server activated: the
// dynamic config file its zoo.cfg names (ZooKeeper's layout, which the
// server writes when it activates one), else the first one.
func (c *cluster) membership() ensembleConfig {
	best := c.rc.initial
	for _, nd := range c.nodes {
		b, err := os.ReadFile(nd.cfgPath)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f, ok := strings.CutPrefix(strings.TrimSpace(line), "dynamicConfigFile=")
			if !ok {
				continue
			}
			i := strings.LastIndex(f, ".dynamic.")
			if i < 0 {
				continue
			}
			v, err := strconv.ParseInt(f[i+len(".dynamic."):], 16, 64)
			if err != nil || v <= best.version {
				continue
			}
			if !filepath.IsAbs(f) {
				f = filepath.Join(nd.dir, f)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			ec, err := parseServerLines(string(data))
			if err != nil || len(ec.roles) == 0 {
				continue
			}
			ec.version = v
			best = ec
		}
	}
	return best
}

// mustRun are the servers that must be running: every one without
// reconfig, the members of the configuration of the moment with it.
func (c *cluster) mustRun() []*node {
	if c.rc == nil {
		return c.nodes
	}
	var out []*node
	for id := range c.membership().roles {
		out = append(out, c.nodes[id-1])
	}
	return out
}

// viewMembers is view against configuration m: its voters follow the
// leader (a voter), its observers observe, other servers do not count
// (but two leaders of one epoch anywhere still do).
func (c *cluster) viewMembers(st []nodeStatus, m ensembleConfig) ensembleView {
	v := ensembleView{leader: -1}
	for i, s := range st {
		v.modes = append(v.modes, fmt.Sprintf("s%d:%s", c.nodes[i].id, orDash(s.mode)))
		if s.mode != "leader" {
			continue
		}
		switch {
		case v.leader < 0 || s.epoch > st[v.leader].epoch:
			v.leader = i
		case s.epoch == st[v.leader].epoch:
			v.twoLeaders = fmt.Sprintf("s%d and s%d both lead epoch %d", c.nodes[v.leader].id, c.nodes[i].id, s.epoch)
		}
	}
	v.modes = append(v.modes, "config "+m.String())
	if v.leader < 0 || m.roles[v.leader+1] != roleParticipant {
		return v
	}
	l := st[v.leader]
	v.modes = append(v.modes, fmt.Sprintf("leader epoch %d synced %d, epochs %v", l.epoch, l.synced, epochsOf(st)))
	voters := m.voters()
	observing := 0
	for id, role := range m.roles {
		s := st[id-1]
		if id-1 == v.leader || s.epoch != l.epoch {
			continue
		}
		switch {
		case role == roleParticipant && s.mode == "follower":
			v.followers++
		case role == roleObserver && s.mode == "observer":
			observing++
		}
	}
	need := len(voters)/2 + 1 - 1
	v.quorum = v.followers >= need && l.synced >= need
	v.allSynced = v.followers == len(voters)-1 && l.synced >= len(voters)-1 && observing == len(m.roles)-len(voters)
	return v
}

func epochsOf(st []nodeStatus) []int64 {
	out := make([]int64, len(st))
	for i, s := range st {
		out[i] = s.epoch
	}
	return out
}

// faultSet returns the servers faults may pick (every one, or the members
// of the moment) and the voters among them, as indices.
func (c *cluster) faultSet() (members, voters []int) {
	if c.rc == nil {
		for i := range c.nodes {
			members = append(members, i)
		}
		return members, members
	}
	m := c.membership()
	for id, role := range m.roles {
		members = append(members, id-1)
		if role == roleParticipant {
			voters = append(voters, id-1)
		}
	}
	slices.Sort(members)
	slices.Sort(voters)
	return members, voters
}

// reconfigOp is one reconfig the operator asked for and its answer.
type reconfigOp struct {
	call, ret int64 // Unix ns
	kind      string
	// from is the fromConfig version sent (-1: any); seen is the version
	// the operator read just before.
	from, seen int64
	// incremental: joining/leaving; else members (the whole new list).
	incremental      bool
	joining, leaving []string
	members          []string
	// want is each server's role in the configuration asked ("" for a
	// server it must not have).
	want map[int]string
	// known is false when no answer came (connection lost): in doubt.
	known bool
	code  string // "OK", or the error's name
	zxid  int64  // of an OK: the new configuration's version
}

func (op reconfigOp) String() string {
	var what string
	if op.incremental {
		what = fmt.Sprintf("joining %v leaving %v", op.joining, op.leaving)
	} else {
		what = fmt.Sprintf("members %v", op.members)
	}
	out := op.code
	if op.code == "OK" {
		out += fmt.Sprintf(" zxid %#x", op.zxid)
	}
	return fmt.Sprintf("%s from %d (%s): %s [%d,%d]", op.kind, op.from, what, out, op.call, op.ret)
}

// configRead is one synced read of /zookeeper/config by the operator.
type configRead struct {
	call, ret int64
	mzxid     int64
	config    ensembleConfig
}

// reconfigLog is what the operator did and read, in its (sequential)
// order.
type reconfigLog struct {
	mu    sync.Mutex
	ops   []reconfigOp
	reads []configRead
}

// checkReconfigLog judges the operator's reconfigs and reads: each read's
// version is its mzxid (a configuration's version is its reconfig's
// zxid); versions never go back; an OK's zxid is at most the version of
// every read that started after its answer; the read at an OK's version
// shows the change asked; and an answer the mode never expects is a
// violation. It returns one message per violation.
func checkReconfigLog(ops []reconfigOp, reads []configRead) []string {
	var out []string
	for i, r := range reads {
		if r.config.version != r.mzxid {
			out = append(out, fmt.Sprintf("read %d of /zookeeper/config: version=%x but mzxid %#x", i, r.config.version, r.mzxid))
		}
		if i > 0 && r.config.version < reads[i-1].config.version {
			out = append(out, fmt.Sprintf("read %d of /zookeeper/config: version went back from %x to %x", i, reads[i-1].config.version, r.config.version))
		}
	}
	// Only the operator reconfigures, one request at a time, after a
	// synced read: until a request goes unanswered (it may commit later),
	// the version it read is the current one, which decides BadVersion.
	inDoubt := false
	for _, op := range ops {
		if !inDoubt {
			switch {
			case op.code == "BadVersion" && (op.from == -1 || op.from == op.seen):
				out = append(out, fmt.Sprintf("reconfig %s: BadVersion, but version %x was current (read just before)", op, op.seen))
			case op.code == "OK" && op.from != -1 && op.from != op.seen:
				out = append(out, fmt.Sprintf("reconfig %s: accepted from version %x, but %x was current (read just before)", op, op.from, op.seen))
			}
		}
		if !op.known {
			inDoubt = true
		}
		wantMembers := 0
		for _, role := range op.want {
			if role != "" {
				wantMembers++
			}
		}
		switch op.code {
		case "OK", "BadVersion", "NewConfigNoQuorum", "ReconfigInProgress", "unknown":
		default:
			out = append(out, fmt.Sprintf("reconfig %s: an answer no reconfig of this mode should get", op))
		}
		if op.code != "OK" {
			continue
		}
		shown := false
		for i, r := range reads {
			if r.call <= op.ret {
				continue
			}
			if r.config.version < op.zxid {
				out = append(out, fmt.Sprintf("reconfig %s acknowledged, but read %d (started after) has version %x", op, i, r.config.version))
			}
			if r.config.version == op.zxid && !shown {
				shown = true
				for id, role := range op.want {
					if got := r.config.roles[id]; got != role {
						out = append(out, fmt.Sprintf("reconfig %s acknowledged, but its configuration %s has s%d as %q, asked %q", op, r.config, id, got, role))
					}
				}
				if !op.incremental && len(r.config.roles) != wantMembers {
					out = append(out, fmt.Sprintf("reconfig %s acknowledged, but its configuration %s has other members", op, r.config))
				}
			}
		}
	}
	return out
}

// operator issues the reconfigs.
type operator struct {
	c      *cluster
	rng    *rand.Rand
	conn   *zk.Conn
	log    *reconfigLog
	logger zk.Logger
	// retired: servers a reconfig removed that were stopped.
	retired map[int]bool
	notes   []string
}

func newOperator(c *cluster, seed uint64, logger zk.Logger) (*operator, error) {
	conn, _, err := zk.Connect(c.clientAddrs(), 10*time.Second, zk.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("operator session: %w", err)
	}
	if err := conn.AddAuth("digest", []byte(reconfigSuper)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("operator auth: %w", err)
	}
	return &operator{c: c, rng: rand.New(rand.NewPCG(seed, 0x4ec0f)), conn: conn, log: &reconfigLog{}, logger: logger, retired: map[int]bool{}}, nil
}

// read records a synced read of /zookeeper/config.
func (o *operator) read() (configRead, error) {
	r := configRead{call: time.Now().UnixNano()}
	if _, err := o.conn.Sync("/zookeeper/config"); err != nil {
		return r, fmt.Errorf("sync: %w", err)
	}
	data, st, err := o.conn.Get("/zookeeper/config")
	if err != nil {
		return r, fmt.Errorf("get /zookeeper/config: %w", err)
	}
	r.ret = time.Now().UnixNano()
	r.mzxid = st.Mzxid
	if r.config, err = parseServerLines(string(data)); err != nil {
		return r, err
	}
	o.log.mu.Lock()
	o.log.reads = append(o.log.reads, r)
	o.log.mu.Unlock()
	return r, nil
}

// run asks for a reconfig every 0.5–2 s until stop.
func (o *operator) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(between(o.rng, 500*time.Millisecond, 2*time.Second)):
		}
		o.step()
	}
}

// reconfig kinds.
const (
	rcRemoveFollower = "remove-follower"
	rcRemoveLeader   = "remove-leader"
	rcAddParticipant = "add-participant"
	rcAddObserver    = "add-observer"
	rcToObserver     = "to-observer"
	rcToParticipant  = "to-participant"
	rcRemoveObserver = "remove-observer"
)

var reconfigKinds = []string{rcRemoveFollower, rcRemoveLeader, rcAddParticipant, rcAddObserver, rcToObserver, rcToParticipant, rcRemoveObserver}

// minVoters keeps a fault's minority at one server at least.
const minVoters = 3

func (o *operator) step() {
	cur, err := o.read()
	if err != nil {
		return // the ensemble is down or the session moving: next time
	}
	cfg := cur.config
	voters := cfg.voters()
	lead := o.c.leader() + 1
	var outside, observers, followers []int
	for _, nd := range o.c.nodes {
		switch cfg.roles[nd.id] {
		case "":
			outside = append(outside, nd.id)
		case roleObserver:
			observers = append(observers, nd.id)
		default:
			if nd.id != lead {
				followers = append(followers, nd.id)
			}
		}
	}
	var kinds []string
	if len(voters) > minVoters {
		kinds = append(kinds, rcRemoveFollower, rcToObserver)
		if lead > 0 && cfg.roles[lead] == roleParticipant {
			kinds = append(kinds, rcRemoveLeader)
		}
	}
	if len(outside) > 0 {
		kinds = append(kinds, rcAddParticipant, rcAddObserver)
	}
	if len(observers) > 0 {
		kinds = append(kinds, rcToParticipant, rcRemoveObserver)
	}
	if len(kinds) == 0 || len(followers) == 0 {
		return
	}
	kind := kinds[o.rng.IntN(len(kinds))]
	pickOf := func(ids []int) int { return ids[o.rng.IntN(len(ids))] }
	want := maps.Clone(cfg.roles)
	var target int
	var role string
	switch kind {
	case rcRemoveFollower:
		target = pickOf(followers)
	case rcRemoveLeader:
		target = lead
	case rcRemoveObserver:
		target = pickOf(observers)
	case rcAddParticipant, rcAddObserver:
		target, role = pickOf(outside), roleParticipant
		if kind == rcAddObserver {
			role = roleObserver
		}
	case rcToObserver:
		target, role = pickOf(followers), roleObserver
	case rcToParticipant:
		target, role = pickOf(observers), roleParticipant
	}
	want[target] = role
	if role == "" {
		delete(want, target)
	}
	if role != "" && cfg.roles[target] == "" {
		var err error
		if !o.c.withFree(target-1, func() { err = o.startJoiner(target, role, cfg) }) {
			return // a fault holds it: another time
		}
		if err != nil {
			o.notes = append(o.notes, fmt.Sprintf("could not start s%d to add it: %v", target, err))
			return
		}
	}
	op := reconfigOp{kind: kind, want: map[int]string{}, from: cur.config.version, seen: cur.config.version}
	for _, nd := range o.c.nodes {
		op.want[nd.id] = want[nd.id]
	}
	switch x := o.rng.IntN(20); {
	case x < 5:
		op.from = -1
	case x < 7:
		op.from = cur.config.version - 1 // stale: BadVersion
	}
	if o.rng.IntN(4) == 0 {
		for _, id := range slices.Sorted(maps.Keys(want)) {
			op.members = append(op.members, o.c.nodes[id-1].serverLine(want[id]))
		}
	} else {
		op.incremental = true
		if role == "" {
			op.leaving = []string{strconv.Itoa(target)}
		} else {
			op.joining = []string{o.c.nodes[target-1].serverLine(role)}
		}
	}
	o.c.rc.pause.RLock()
	op.call = time.Now().UnixNano()
	var st *zk.Stat
	if op.incremental {
		st, err = o.conn.IncrementalReconfig(op.joining, op.leaving, op.from)
	} else {
		st, err = o.conn.Reconfig(op.members, op.from)
	}
	op.ret = time.Now().UnixNano()
	o.c.rc.pause.RUnlock()
	op.code, op.known = reconfigCode(err)
	if err == nil {
		op.zxid = st.Mzxid
	}
	o.log.mu.Lock()
	o.log.ops = append(o.log.ops, op)
	o.log.mu.Unlock()
	if op.code == "OK" {
		_, _ = o.read()
		if role == "" && o.rng.IntN(10) < 7 {
			// Retired, as a scaled-down pod: stopped (started again with
			// the members of the day if a reconfig adds it back).
			o.c.withFree(target-1, func() {
				o.c.nodes[target-1].kill()
				o.retired[target] = true
			})
		}
	}
}

// reconfigCode names a reconfig's answer: known is false when no answer
// came.
func reconfigCode(err error) (code string, known bool) {
	switch {
	case err == nil:
		return "OK", true
	case errors.Is(err, zk.ErrBadVersion):
		return "BadVersion", true
	case errors.Is(err, zk.ErrBadArguments):
		return "BadArguments", true
	case errors.Is(err, zk.ErrNoAuth):
		return "NoAuth", true
	case errors.Is(err, zk.ErrReconfigDisabled):
		return "ReconfigDisabled", true
	case errors.Is(err, zk.ErrConnectionClosed), errors.Is(err, zk.ErrNoServer), errors.Is(err, zk.ErrSessionExpired),
		errors.Is(err, zk.ErrClosing), errors.Is(err, zk.ErrSessionMoved):
		return "unknown", false
	}
	// go-zk has no error values for ZooKeeper's -13 and -14.
	switch err.Error() {
	case "unknown error: -13":
		return "NewConfigNoQuorum", true
	case "unknown error: -14":
		return "ReconfigInProgress", true
	}
	return err.Error(), true
}

// startJoiner starts server id, outside the configuration cur, to be
// added with role: its zoo.cfg names cur's members and itself, as
// ZooKeeper's joiners do. A running server (one removed and left running)
// is left as it is.
func (o *operator) startJoiner(id int, role string, cur ensembleConfig) error {
	nd := o.c.nodes[id-1]
	if nd.alive() {
		return nil
	}
	var b strings.Builder
	b.WriteString(nd.baseCfg)
	for _, mid := range slices.Sorted(maps.Keys(cur.roles)) {
		b.WriteString(o.c.nodes[mid-1].serverLine(cur.roles[mid]) + "\n")
	}
	b.WriteString(nd.serverLine(role) + "\n")
	if err := os.WriteFile(nd.cfgPath, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("zoo.cfg of joiner %d: %w", id, err)
	}
	delete(o.retired, id)
	return o.c.spawn(nd)
}

// String sums up what the operator asked and got.
func (o *operator) String() string {
	o.log.mu.Lock()
	defer o.log.mu.Unlock()
	asked := map[string]int{}
	codes := map[string]int{}
	okKinds := map[string]int{}
	for _, op := range o.log.ops {
		asked[op.kind]++
		codes[op.code]++
		if op.code == "OK" {
			okKinds[op.kind]++
		}
	}
	count := func(m map[string]int) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
		return strings.Join(parts, " ")
	}
	first, last := "-", "-"
	if n := len(o.log.reads); n > 0 {
		first, last = o.log.reads[0].config.String(), o.log.reads[n-1].config.String()
	}
	s := fmt.Sprintf("reconfigs: %d asked (%s); answers: %s; committed by kind: %s; %d config reads, first %s, last %s",
		len(o.log.ops), count(asked), count(codes), count(okKinds), len(o.log.reads), first, last)
	for _, n := range o.notes {
		s += "\n  " + n
	}
	return s
}

// dump lists the operator's reconfigs and reads by call time.
func (o *operator) dump() string {
	o.log.mu.Lock()
	defer o.log.mu.Unlock()
	type line struct {
		at int64
		s  string
	}
	var ls []line
	for _, op := range o.log.ops {
		ls = append(ls, line{op.call, "reconfig " + op.String()})
	}
	for _, r := range o.log.reads {
		ls = append(ls, line{r.call, fmt.Sprintf("read [%d,%d] mzxid %#x: %s", r.call, r.ret, r.mzxid, r.config)})
	}
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].at < ls[j].at })
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.s + "\n")
	}
	for _, n := range o.notes {
		b.WriteString("note: " + n + "\n")
	}
	return b.String()
}

// treeNode is what the convergence check compares of one znode.
type treeNode struct {
	mzxid, ephemeralOwner int64
	version               int32
	data                  string // its bytes' length and a hash
}

// readTree reads every znode through a session of server addr alone,
// after a sync.
func readTree(addr string, logger zk.Logger) (map[string]treeNode, error) {
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.Sync("/"); err != nil {
		return nil, fmt.Errorf("sync on %s: %w", addr, err)
	}
	out := map[string]treeNode{}
	queue := []string{"/"}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		data, st, err := conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get %s on %s: %w", p, addr, err)
		}
		out[p] = treeNode{mzxid: st.Mzxid, ephemeralOwner: st.EphemeralOwner, version: st.Version, data: dataSum(data)}
		kids, _, err := conn.Children(p)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			return nil, fmt.Errorf("children of %s on %s: %w", p, addr, err)
		}
		for _, k := range kids {
			queue = append(queue, strings.TrimSuffix(p, "/")+"/"+k)
		}
	}
	return out, nil
}

func dataSum(b []byte) string {
	var h uint64 = 14695981039346656037 // FNV-1a
	for _, x := range b {
		h = (h ^ uint64(x)) * 1099511628211
	}
	return fmt.Sprintf("%d:%016x", len(b), h)
}

// treeDiff describes how b differs from a ("" when equal), at most a few
// paths.
func treeDiff(a, b map[string]treeNode) string {
	var diffs []string
	for _, p := range slices.Sorted(maps.Keys(a)) {
		if y, ok := b[p]; !ok {
			diffs = append(diffs, p+" missing")
		} else if y != a[p] {
			diffs = append(diffs, fmt.Sprintf("%s %+v vs %+v", p, a[p], y))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[p]; !ok {
			diffs = append(diffs, p+" extra")
		}
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}

// checkConvergence waits (up to recoverWait) until every member of cfg
// holds the same tree (/zookeeper/config included); it returns the number
// of znodes, or what still differed at the deadline.
func (c *cluster) checkConvergence(cfg ensembleConfig, logger zk.Logger) (int, error) {
	ids := slices.Sorted(maps.Keys(cfg.roles))
	deadline := time.Now().Add(recoverWait)
	var last string
	for {
		trees := make([]map[string]treeNode, len(ids))
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() { trees[i], errs[i] = readTree(c.nodes[id-1].clientAddr, logger) })
		}
		wg.Wait()
		last = ""
		if err := errors.Join(errs...); err != nil {
			last = err.Error()
		} else {
			for i := 1; i < len(ids); i++ {
				if d := treeDiff(trees[0], trees[i]); d != "" {
					last = fmt.Sprintf("s%d vs s%d: %s", ids[0], ids[i], d)
					break
				}
			}
			if last == "" {
				return len(trees[0]), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the members %v of configuration %s do not hold the same tree within %v: %s", ids, cfg, recoverWait, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sortedOps orders a log's ops by call (they are issued one at a time).
func sortedOps(ops []reconfigOp) []reconfigOp {
	out := slices.Clone(ops)
	sort.SliceStable(out, func(i, j int) bool { return out[i].call < out[j].call })
	return out
}

// checkReconfigRun runs the reconfig mode's checks once the final reads
// are done, and returns the figures' lines: sessions that expired
// unasked, the members of the final configuration holding one tree, and
// the operator's log.
func checkReconfigRun(c *cluster, op *operator, rec *load.Recorder, ex *expirers, recovered bool, logger zk.Logger, out *sink) []string {
	asked := map[int64]bool{}
	if ex != nil {
		ex.mu.Lock()
		for _, h := range ex.holds {
			asked[h.session] = true
		}
		ex.mu.Unlock()
	}
	var unasked []int64
	for _, s := range rec.ExpiredSessions() {
		if !asked[s] {
			unasked = append(unasked, s)
			out.report(finding{check: checkReconfig, msg: fmt.Sprintf("session %#x expired, and the harness did not expire it", s)})
		}
	}
	lines := []string{fmt.Sprintf("sessions expired that the harness did not expire: %d", len(unasked))}
	if recovered {
		final, err := op.read()
		if err != nil {
			out.report(finding{check: checkRecovery, msg: fmt.Sprintf("final read of /zookeeper/config: %v", err), at: time.Now().UnixNano()})
		} else {
			start := time.Now()
			n, err := c.checkConvergence(final.config, logger)
			if err != nil {
				out.report(finding{check: checkConverge, msg: err.Error(), at: time.Now().UnixNano()})
			} else {
				lines = append(lines, fmt.Sprintf("final configuration %s: its %d members hold the same tree, %d znodes (/zookeeper/config included; agreed after %v)",
					final.config, len(final.config.roles), n, time.Since(start).Round(time.Millisecond)))
			}
		}
	}
	op.log.mu.Lock()
	msgs := checkReconfigLog(sortedOps(op.log.ops), op.log.reads)
	op.log.mu.Unlock()
	for _, m := range msgs {
		out.report(finding{check: checkReconfig, msg: m})
	}
	return append(lines, op.String(), fmt.Sprintf("reconfig checks: %d violations", len(msgs)))
}
