package server

import "github.com/zabkeeper/zabkeeper/internal/nbwrite"

// writeEventNow writes a watch event's frame on the socket from the event
// loop when the connection's write side is free (nothing queued, nobody
// writing): a change watched by 1,000 sessions then costs 1,000 socket
// writes, not also 1,000 wake-ups of writer goroutines. The write never
// blocks the loop: what the socket's buffer does not take is queued for the
// writer, as the whole frame is after a failed write (the writer meets the
// error and ends the connection). false: nothing was written, enqueue the
// frame.
func (c *clientConn) writeEventNow(frame []byte) bool {
	c.mu.Lock()
	if c.raw == nil || c.closing || c.writing || len(c.out) > 0 {
		c.mu.Unlock()
		return false
	}
	// Under mu: the writer and a reader's own reply (claimWrite) wait.
	n, err := nbwrite.Write(c.raw, frame)
	if n == len(frame) && err == nil {
		c.mu.Unlock()
		c.sent.Add(1)
		c.srv.stats.sent.Add(1)
		c.directEvents.Add(1)
		return true
	}
	if err != nil {
		c.log.Debug("event write failed; the writer retries", "err", err)
	}
	rest := frame[n:] // frames are never changed once built
	c.out = append(c.out, rest)
	c.outBytes += len(rest)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}
