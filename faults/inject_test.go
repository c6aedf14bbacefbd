package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Fault kinds. Faults run one at a time: each is injected, held, healed,
// and the next starts only once every server follows one serving leader
// again. So at most a minority is ever down, cut off, slow or wiped at
// once, except in kill-majority, which SIGKILLs a majority on purpose for
// a moment (the ensemble stops serving until they are restarted; every
// acknowledged write must survive, since it is on disk on a quorum).
const (
	faultKill         = "kill-restart"  // SIGKILL 1..minority servers, restart them
	faultKillMajority = "kill-majority" // SIGKILL a majority, restart them
	faultStop         = "stop-leader"   // SIGSTOP the leader (and, with 5, maybe one more), SIGCONT
	faultPartition    = "partition"     // cut a minority (with or without the leader) off
	faultOneWay       = "one-way-cut"   // hold back one direction of a minority's links
	faultSlow         = "slow-link"     // delay links, below or above syncLimit*tickTime
	faultWipe         = "wipe-restart"  // SIGKILL a follower, empty its dataDir, restart, resync
)

var faultKinds = []string{faultKill, faultKillMajority, faultStop, faultPartition, faultOneWay, faultSlow, faultWipe, faultIdle}

// faultWeights: how often each kind is drawn once every kind ran once.
var faultWeights = map[string]int{
	faultKill: 3, faultKillMajority: 1, faultStop: 2, faultPartition: 3, faultOneWay: 2, faultSlow: 3, faultWipe: 2,
	faultIdle: 1,
}

// parseKinds checks a -faults.kinds list: "all" or fault kinds. "all" has
// idle-gap (over 31 s each) only in a fault phase of a minute or more.
func parseKinds(s string, phase time.Duration) ([]string, error) {
	if s == "all" || s == "" {
		if phase < time.Minute {
			return slices.DeleteFunc(slices.Clone(faultKinds), func(k string) bool { return k == faultIdle }), nil
		}
		return faultKinds, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		k := strings.TrimSpace(f)
		if !slices.Contains(faultKinds, k) {
			return nil, fmt.Errorf("-faults.kinds: unknown fault kind %q (want all, or some of %s)", k, strings.Join(faultKinds, ","))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// scheduler picks fault kinds among kinds: first every kind once, in a
// seeded order (so a short run covers as many kinds as it has time for),
// then at random by weight.
type scheduler struct {
	rng   *rand.Rand
	kinds []string
	queue []string
}

func newScheduler(rng *rand.Rand, kinds []string) *scheduler {
	q := slices.Clone(kinds)
	rng.Shuffle(len(q), func(i, j int) { q[i], q[j] = q[j], q[i] })
	return &scheduler{rng: rng, kinds: kinds, queue: q}
}

func (s *scheduler) next() string {
	if len(s.queue) > 0 {
		k := s.queue[0]
		s.queue = s.queue[1:]
		return k
	}
	total := 0
	for _, k := range s.kinds {
		total += faultWeights[k]
	}
	x := s.rng.IntN(total)
	for _, k := range s.kinds {
		if x < faultWeights[k] {
			return k
		}
		x -= faultWeights[k]
	}
	return s.kinds[0]
}

// faultRecord is one injected fault and how the ensemble recovered.
type faultRecord struct {
	kind    string
	targets []int // server ids
	detail  string
	start   time.Time
	healed  time.Time // the fault ended (processes restarted or resumed, links restored)
	hold    time.Duration
	rec     recovery
	// before and after are the leader's ids around the fault (0: none).
	before, after int
}

func (r faultRecord) String() string {
	if r.kind == faultIdle {
		return fmt.Sprintf("%s, %v without faults: %s", r.kind, r.hold.Round(time.Millisecond), r.detail)
	}
	ids := make([]string, len(r.targets))
	for i, id := range r.targets {
		ids[i] = fmt.Sprintf("s%d", id)
	}
	s := fmt.Sprintf("%s [%s] hold %v", r.kind, strings.Join(ids, ","), r.hold.Round(time.Millisecond))
	if r.detail != "" {
		s += ", " + r.detail
	}
	q := "never"
	if r.rec.quorum >= 0 {
		q = r.rec.quorum.Round(time.Millisecond).String()
	}
	return s + fmt.Sprintf(": quorum serving after %s, all in sync after %v, leader s%d -> s%d (healed at %d)",
		q, r.rec.full.Round(time.Millisecond), r.before, r.after, r.healed.UnixNano())
}

// between draws a duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// pick returns k distinct server indices among from. With probability
// pLeader (and a known leader among from) the leader is one of them;
// otherwise the leader is left out.
func (c *cluster) pick(rng *rand.Rand, from []int, k, leader int, pLeader float64) []int {
	var out, others []int
	for _, i := range from {
		if i != leader {
			others = append(others, i)
		}
	}
	if leader >= 0 && slices.Contains(from, leader) && rng.Float64() < pLeader {
		out = append(out, leader)
	}
	rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	out = append(out, others[:min(k-len(out), len(others))]...)
	slices.Sort(out)
	return out
}

func (c *cluster) ids(idx []int) []int {
	out := make([]int, len(idx))
	for i, x := range idx {
		out[i] = c.nodes[x].id
	}
	return out
}

// crossLinks calls f(from, to) for every link between group and the rest.
func (c *cluster) crossLinks(group []int, f func(from, to int)) {
	for _, i := range group {
		for j := range c.nodes {
			if !slices.Contains(group, j) {
				f(i, j)
				f(j, i)
			}
		}
	}
}

func (c *cluster) killAll(idx []int) {
	for _, i := range idx {
		c.nodes[i].kill()
	}
}

func (c *cluster) spawnAll(idx []int) error {
	for _, i := range idx {
		if err := c.spawn(c.nodes[i]); err != nil {
			return err
		}
	}
	return nil
}

// inject applies one fault of kind, holds it, heals it and waits until
// every server follows one serving leader again.
func (c *cluster) inject(rng *rand.Rand, kind string) (faultRecord, error) {
	if kind == faultWipe && c.rc != nil {
		// The members stay put while a server is wiped and resyncs.
		c.rc.pause.Lock()
		defer c.rc.pause.Unlock()
	}
	v := c.view(c.statuses())
	if !v.allSynced {
		// Faults start from a whole ensemble (a wipe needs it).
		if _, err := c.waitRecovery(time.Now(), recoverWait, nil); err != nil {
			return faultRecord{kind: kind, start: time.Now()}, fmt.Errorf("before %s: %w", kind, err)
		}
		v = c.view(c.statuses())
	}
	lead := v.leader
	// The victims are drawn among the members (every server, or those of
	// the configuration of the moment with -faults.reconfig), at most a
	// minority of the voters but in kill-majority.
	members, voters := c.faultSet()
	minority := max((len(voters)-1)/2, 1)
	r := faultRecord{kind: kind, start: time.Now(), before: lead + 1}
	defer c.releaseAll()
	var extra func([]nodeStatus, ensembleView) bool
	var err error
	switch kind {
	case faultKill:
		victims := c.pick(rng, members, 1+rng.IntN(minority), lead, 0.5)
		r.targets, r.hold = c.ids(victims), between(rng, 500*time.Millisecond, 2500*time.Millisecond)
		c.claim(victims)
		c.killAll(victims)
		time.Sleep(r.hold)
		err = c.spawnAll(victims)

	case faultKillMajority:
		victims := c.pick(rng, voters, len(voters)/2+1, lead, 0.5)
		r.targets, r.hold = c.ids(victims), between(rng, 300*time.Millisecond, 1500*time.Millisecond)
		c.claim(victims)
		c.killAll(victims)
		time.Sleep(r.hold)
		err = c.spawnAll(victims)

	case faultStop:
		// Followers give up on a silent leader after syncTimeout (2 s):
		// the hold is above it about 40% of the time, forcing an election.
		victims := c.pick(rng, members, 1+rng.IntN(minority), lead, 1)
		r.targets, r.hold = c.ids(victims), between(rng, time.Second, 3500*time.Millisecond)
		c.claim(victims)
		for _, i := range victims {
			if e := c.nodes[i].signal(syscall.SIGSTOP); e != nil && err == nil {
				err = e
			}
		}
		time.Sleep(r.hold)
		c.healAll() // SIGCONT

	case faultPartition:
		victims := c.pick(rng, members, 1+rng.IntN(minority), lead, 0.5)
		r.targets, r.hold = c.ids(victims), between(rng, time.Second, 3*time.Second)
		c.crossLinks(victims, func(i, j int) { c.proxies[i][j].Cut() })
		time.Sleep(r.hold)
		c.healAll()

	case faultOneWay:
		// Outbound: the group's messages to the others are held back, it
		// still hears them. Inbound: the reverse. The held bytes arrive
		// when the cut is restored, unless a side dropped the link.
		victims := c.pick(rng, members, 1+rng.IntN(minority), lead, 0.5)
		r.targets, r.hold = c.ids(victims), between(rng, time.Second, 3500*time.Millisecond)
		outbound := rng.IntN(2) == 0
		r.detail = "inbound"
		if outbound {
			r.detail = "outbound"
		}
		for _, i := range victims {
			for j := range c.nodes {
				if slices.Contains(victims, j) {
					continue
				}
				if outbound {
					c.holdSends(i, j)
				} else {
					c.holdSends(j, i)
				}
			}
		}
		time.Sleep(r.hold)
		c.healAll()

	case faultSlow:
		r.targets, r.detail, r.hold = c.slowLinks(rng, lead)
		time.Sleep(r.hold)
		c.healAll()

	case faultWipe:
		// Only a follower of a whole ensemble: the others are a quorum
		// with every committed txn, and no other fault runs until the
		// wiped server is back in sync.
		f := c.pick(rng, members, 1, lead, 0)[0]
		c.claim([]int{f})
		nd := c.nodes[f]
		r.targets, r.hold = []int{nd.id}, between(rng, 300*time.Millisecond, 1500*time.Millisecond)
		nd.kill()
		if err = nd.wipe(); err != nil {
			break
		}
		time.Sleep(r.hold)
		var target int64
		if st := c.statuses(); lead >= 0 {
			target = st[lead].zxid
		}
		r.detail = fmt.Sprintf("resync to zxid >= %#x", target)
		extra = func(st []nodeStatus, _ ensembleView) bool {
			return (st[f].mode == "follower" || st[f].mode == "observer") && st[f].zxid >= target
		}
		err = c.spawn(nd)
	}
	r.healed = time.Now()
	if err != nil {
		return r, fmt.Errorf("%s: %w", kind, err)
	}
	r.rec, err = c.waitRecovery(r.healed, recoverWait, extra)
	r.after = r.rec.leader + 1
	if err == nil && kind == faultWipe {
		// The restarted server must have come up empty: its log says
		// what it recovered from disk.
		nd := c.nodes[r.targets[0]-1]
		if !strings.Contains(nd.log.sinceLastStart(), "msg=recovered zxid=0x0 ") {
			err = fmt.Errorf("server %d did not restart empty after the wipe:\n%s", nd.id, nd.log.tail(2000))
		}
		r.detail += "; then " + nd.diskFiles()
	}
	return r, err
}

// diskFiles describes the snapshots and log segments in nd's data
// directory: after a wipe, a snapshot past zxid 0 means the resync was a
// SNAP, log segments alone a DIFF.
func (nd *node) diskFiles() string {
	entries, err := os.ReadDir(filepath.Join(nd.dataDir, "version-2"))
	if err != nil {
		return fmt.Sprintf("data dir unreadable: %v", err)
	}
	var snaps []string
	logs := 0
	for _, e := range entries {
		switch {
		case e.Name() == "snapshot.0":
			// The one a server writes when it starts without any.
		case strings.HasPrefix(e.Name(), "snapshot."):
			snaps = append(snaps, strings.TrimPrefix(e.Name(), "snapshot."))
		case strings.HasPrefix(e.Name(), "log."):
			logs++
		}
	}
	how := "DIFF (no snapshot)"
	if len(snaps) > 0 {
		how = "SNAP (snapshot " + strings.Join(snaps, ",") + ")"
	}
	return fmt.Sprintf("on disk: %s, %d log segments", how, logs)
}

// slowLinks delays links for the hold: either every link between a
// minority (with or without the leader) and the rest, or one link, in one
// or both directions. Half the delays are below syncTimeout, which the
// links survive, half above, which makes peers give up on each other.
func (c *cluster) slowLinks(rng *rand.Rand, lead int) (targets []int, detail string, hold time.Duration) {
	n := len(c.nodes)
	all, _ := c.faultSet()
	var d time.Duration
	rel := "<"
	if rng.IntN(2) == 0 {
		d = between(rng, syncTimeout/4, syncTimeout*4/5)
	} else {
		d = between(rng, syncTimeout*6/5, 2*syncTimeout)
		rel = ">"
	}
	d = d.Round(time.Millisecond)
	hold = d + between(rng, time.Second, 2500*time.Millisecond)
	if rng.IntN(2) == 0 {
		victims := c.pick(rng, all, 1+rng.IntN((n-1)/2), lead, 0.5)
		c.crossLinks(victims, func(i, j int) { c.proxies[i][j].SetDelay(d) })
		return c.ids(victims), fmt.Sprintf("all their links delayed %v %s syncLimit*tickTime", d, rel), hold
	}
	pair := c.pick(rng, all, 2, lead, 0.5)
	i, j := pair[0], pair[1]
	if rng.IntN(2) == 0 {
		i, j = j, i
	}
	dir := "both ways"
	switch rng.IntN(3) {
	case 0:
		c.delaySends(i, j, d)
		dir = fmt.Sprintf("s%d->s%d only", c.nodes[i].id, c.nodes[j].id)
	case 1:
		c.delaySends(j, i, d)
		dir = fmt.Sprintf("s%d->s%d only", c.nodes[j].id, c.nodes[i].id)
	default:
		c.proxies[i][j].SetDelay(d)
		c.proxies[j][i].SetDelay(d)
	}
	return c.ids(pair), fmt.Sprintf("link delayed %v %s syncLimit*tickTime, %s", d, rel, dir), hold
}
