package faults

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zabkeeper/zabkeeper/faults/load"
)

// Idle gaps. A server gives a client a write timeout (30 s) to accept each
// write; a connection on which the server had sent nothing for longer than
// that once died at its next large reply or burst of events, which went
// straight to the socket under the old, expired deadline (issue 8, part 1,
// item 1). Clients with long sessions (go-zk pings every third of the
// session timeout) live in that state.
//
// The fault kind idle-gap injects nothing: the workers rest (a calm of
// over 31 s at full load would add half again to the history, and the
// read check is quadratic in it), the big writers and expirers go on, and
// it waits until two sessions of idleSessionTimeout (pings every
// 60 s) have heard nothing from their servers for idleQuiet, then
//   - the reader reads /idle/big, a value as large as a create may carry
//     under jute.maxbuffer: the reply must come, whole, on the same
//     connection;
//   - a third session sets every /flood child in one multi, and the
//     watcher, which holds a data watch on each (long names, so the events
//     are over 64 KiB in all), must get every NodeDataChanged, on the same
//     connection;
// and the watcher sets its watches again. No other fault runs meanwhile,
// so a connection lost here is the server's doing: a finding.
//
// An idle gap lasts over 31 s, so "all" schedules it only in runs of a
// minute or more (-faults.kinds=idle-gap,... asks for it in any run).

const faultIdle = "idle-gap"

const (
	idleSessionTimeout = 180 * time.Second
	idleQuiet          = 31 * time.Second
	idleWait           = 100 * time.Second // for the quiet, and pings come every 60 s
	idleEventWait      = 30 * time.Second
	floodNodes         = 400
	floodNameLen       = 240
	idleBigPath        = "/idle/big"
)

func floodPath(k int) string { return fmt.Sprintf("/flood/%0*d", floodNameLen, k) }

// idler holds the idle sessions.
type idler struct {
	reader, watcher *load.Session // their Rec is nil: nothing of theirs is recorded
	flooder         *zk.Conn
	big             []byte
	watches         []<-chan zk.Event
	episodes        int
	ok              int // episodes whose read and flood both came through
	notQuiet        int
	summary         []string
}

func dialIdle(addrs []string, logger zk.Logger) (*load.Session, error) {
	tap := load.NewTap()
	conn, _, err := load.Connect(addrs, idleSessionTimeout, logger, tap)
	if err != nil {
		return nil, err
	}
	s := &load.Session{Conn: conn, Tap: tap}
	if s.WaitSession(timeoutChan(nil, recoverWait)) == 0 {
		conn.Close()
		return nil, fmt.Errorf("idle session: no session within %v", recoverWait)
	}
	return s, nil
}

// newIdler opens the sessions and creates the nodes, on a whole ensemble.
func newIdler(addrs []string, logger zk.Logger) (*idler, error) {
	d := &idler{big: bigValue("idle", maxCreateValue(idleBigPath))}
	var err error
	if d.reader, err = dialIdle(addrs, logger); err != nil {
		return nil, err
	}
	if d.watcher, err = dialIdle(addrs, logger); err != nil {
		d.close()
		return nil, err
	}
	fl, err := dialIdle(addrs, logger)
	if err != nil {
		d.close()
		return nil, err
	}
	d.flooder = fl.Conn
	acl := zk.WorldACL(zk.PermAll)
	// /idle/big on its own: in a multi it would not fit jute.maxbuffer.
	for _, c := range []struct {
		path string
		data []byte
	}{{"/idle", nil}, {idleBigPath, d.big}} {
		if _, err := d.flooder.Create(c.path, c.data, 0, acl); err != nil {
			d.close()
			return nil, fmt.Errorf("idle gaps: create %s: %w", c.path, err)
		}
	}
	creates := []any{&zk.CreateRequest{Path: "/flood", Acl: acl}}
	for k := range floodNodes {
		creates = append(creates, &zk.CreateRequest{Path: floodPath(k), Acl: acl})
	}
	if _, err := d.flooder.Multi(creates...); err != nil {
		d.close()
		return nil, fmt.Errorf("idle gaps: create the flood nodes: %w", err)
	}
	if err := d.arm(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// arm sets the watcher's data watch on every flood node.
func (d *idler) arm() error {
	d.watches = d.watches[:0]
	// The watcher's server may not have applied the creates yet.
	if _, err := d.watcher.Conn.Sync("/flood"); err != nil {
		return fmt.Errorf("idle gaps: sync /flood: %w", err)
	}
	for k := range floodNodes {
		_, _, ch, err := d.watcher.Conn.GetW(floodPath(k))
		if err != nil {
			return fmt.Errorf("idle gaps: watch %s: %w", floodPath(k), err)
		}
		d.watches = append(d.watches, ch)
	}
	return nil
}

func (d *idler) close() {
	for _, s := range []*load.Session{d.reader, d.watcher} {
		if s != nil {
			s.Conn.Close()
		}
	}
	if d.flooder != nil {
		d.flooder.Close()
	}
}

// episode runs one idle gap; it returns what happened and the findings.
func (d *idler) episode() (string, []finding) {
	d.episodes++
	n := d.episodes
	deadline := time.Now().Add(idleWait)
	for {
		qr, _ := d.reader.Tap.Quiet()
		qw, _ := d.watcher.Tap.Quiet()
		if qr >= idleQuiet && qw >= idleQuiet {
			break
		}
		if time.Now().After(deadline) {
			d.notQuiet++
			return fmt.Sprintf("the idle sessions did not get %v of quiet within %v (reader %v, watcher %v)",
				idleQuiet, idleWait, qr.Round(time.Millisecond), qw.Round(time.Millisecond)), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	var fs []finding
	fail := func(format string, args ...any) {
		fs = append(fs, finding{check: checkIdle, at: time.Now().UnixNano(), msg: fmt.Sprintf("idle gap %d: ", n) + fmt.Sprintf(format, args...)})
	}
	var parts []string

	qr, gen := d.reader.Tap.Quiet()
	data, _, err := d.reader.Conn.Get(idleBigPath)
	_, gen2 := d.reader.Tap.Quiet()
	switch {
	case err != nil:
		fail("after %v with nothing from its server, the reader's getData of %s (%d bytes) failed: %v (connection %d, now %d)",
			qr.Round(time.Millisecond), idleBigPath, len(d.big), err, gen, gen2)
	case !bytes.Equal(data, d.big):
		fail("after %v of quiet, getData of %s returned %d bytes, not the %d written", qr.Round(time.Millisecond), idleBigPath, len(data), len(d.big))
	case gen2 != gen:
		fail("after %v of quiet, getData of %s was answered on a new connection (%d, was %d): the old one was lost",
			qr.Round(time.Millisecond), idleBigPath, gen2, gen)
	default:
		parts = append(parts, fmt.Sprintf("reader quiet %v, then getData of %d bytes whole on the same connection", qr.Round(time.Millisecond), len(data)))
	}

	qw, wgen := d.watcher.Tap.Quiet()
	sets := make([]any, floodNodes)
	for k := range sets {
		sets[k] = &zk.SetDataRequest{Path: floodPath(k), Data: fmt.Appendf(nil, "flood %d", n), Version: -1}
	}
	if _, err := d.flooder.Multi(sets...); err != nil {
		parts = append(parts, fmt.Sprintf("the flood was not sent: %v", err))
		return strings.Join(parts, "; "), fs
	}
	evDeadline := time.Now().Add(idleEventWait)
	got, wrong, eventBytes := 0, 0, 0
	for k, ch := range d.watches {
		select {
		case ev, ok := <-ch:
			if ok && ev.Type == zk.EventNodeDataChanged && ev.Path == floodPath(k) {
				got++
				eventBytes += 4 + 16 + 4 + 4 + 4 + len(ev.Path)
			} else {
				wrong++
			}
		case <-time.After(time.Until(evDeadline)):
		}
	}
	_, wgen2 := d.watcher.Tap.Quiet()
	switch {
	case got != len(d.watches) || wrong > 0:
		fail("after %v with nothing from its server, the watcher got %d of %d NodeDataChanged events of one multi (%d wrong) within %v (connection %d, now %d)",
			qw.Round(time.Millisecond), got, len(d.watches), wrong, idleEventWait, wgen, wgen2)
	case wgen2 != wgen:
		fail("after %v of quiet, the watcher's %d events came on a new connection (%d, was %d)", qw.Round(time.Millisecond), got, wgen2, wgen)
	default:
		parts = append(parts, fmt.Sprintf("watcher quiet %v, then %d events (%d KiB) of one multi on the same connection", qw.Round(time.Millisecond), got, eventBytes>>10))
	}
	if err := d.arm(); err != nil {
		fail("%v", err)
	}
	if len(fs) == 0 {
		d.ok++
	}
	d.summary = append(d.summary, strings.Join(parts, "; "))
	return strings.Join(parts, "; "), fs
}

func (d *idler) String() string {
	return fmt.Sprintf("idle gaps: %d (%d came through whole, %d without %v of quiet); sessions of %v, /idle/big %d bytes, %d flood watches",
		d.episodes, d.ok, d.notQuiet, idleQuiet, idleSessionTimeout, len(d.big), floodNodes)
}

// idleGap runs one idle gap as a fault: from a whole ensemble, no fault
// for its length. The findings go to out.
func (c *cluster) idleGap(d *idler, out *sink) (faultRecord, error) {
	r := faultRecord{kind: faultIdle, start: time.Now()}
	if _, err := c.waitRecovery(time.Now(), recoverWait, nil); err != nil {
		return r, fmt.Errorf("before %s: %w", faultIdle, err)
	}
	detail, fs := d.episode()
	out.report(fs...)
	r.healed = time.Now()
	r.hold, r.detail = r.healed.Sub(r.start), detail
	v := c.view(c.statuses())
	r.before, r.after = v.leader+1, v.leader+1
	return r, nil
}
