package zab

// HasReady reports whether Ready has work.
func (p *Peer) HasReady() bool {
	return p.hsDirty || p.truncate != nil || p.snap != nil || len(p.entries) > 0 ||
		len(p.msgs) > 0 || len(p.committedOut) > 0 || len(p.appMsgs) > 0 || p.configChanged ||
		p.roleKey() != p.reported
}

// Ready returns the pending batch; see Ready's obligations. The batch is
// handed over: a second Ready before Advance returns only newer work.
func (p *Peer) Ready() Ready {
	rd := Ready{
		Truncate:  p.truncate,
		Snapshot:  p.snap,
		Entries:   p.entries,
		Messages:  p.msgs,
		Committed: p.committedOut,
		App:       p.appMsgs,
	}
	if p.hsDirty {
		hs := p.hs
		rd.HardState = &hs
	}
	if p.configChanged {
		c := p.active.clone()
		rd.Config = &c
		p.configChanged = false
	}
	if k := p.roleKey(); k != p.reported {
		rd.RoleChanged = true
		p.reported = k
	}
	p.hsDirty = false
	p.truncate = nil
	p.snap = nil
	p.entries = nil
	p.msgs = nil
	p.committedOut = nil
	p.appMsgs = nil
	p.readyApplied = p.applied
	return rd
}

// ReuseMessages hands back the Messages of an earlier Ready once the
// caller is done with them and keeps no reference to the slice: later
// messages are written into its array instead of a fresh one. Optional;
// the messages are cleared (their entries and payloads released).
func (p *Peer) ReuseMessages(msgs []Message) {
	if cap(msgs) <= cap(p.spareMsgs) {
		return
	}
	// Only msgs' own elements: every element an append wrote to the array
	// is within the len it was handed back with, and was cleared then.
	clear(msgs)
	p.spareMsgs = msgs[:0]
}

// ReuseCommitted hands back the Committed of an earlier Ready once the
// caller applied them and keeps no reference to the slice, as
// ReuseMessages does for Messages. Optional; the entries are cleared.
func (p *Peer) ReuseCommitted(c []Entry) {
	if cap(c) <= cap(p.spareCommitted) {
		return
	}
	clear(c)
	p.spareCommitted = c[:0]
}

// ReuseApp hands back the App of an earlier Ready once the caller handled
// them and keeps no reference to the slice, as ReuseMessages does for
// Messages. Optional; the messages are cleared.
func (p *Peer) ReuseApp(app []Message) {
	if cap(app) <= cap(p.spareApp) {
		return
	}
	clear(app)
	p.spareApp = app[:0]
}

// queueApp adds m to the pending Ready's App, in the array ReuseApp handed
// back if there is one.
func (p *Peer) queueApp(m Message) {
	if p.appMsgs == nil && p.spareApp != nil {
		p.appMsgs, p.spareApp = p.spareApp, nil
	}
	p.appMsgs = append(p.appMsgs, m)
}

// Advance acknowledges the batch returned by Ready: its Committed entries
// are applied, so the in-memory log may forget them beyond its bounds
// (MaxLogEntries, and the byte bound of logByteLimit).
func (p *Peer) Advance() {
	if p.readyApplied > p.appliedAcked {
		p.appliedAcked = p.readyApplied
	}
	p.log.compact(p.appliedAcked, p.cfg.MaxLogEntries, p.logByteLimit())
}
