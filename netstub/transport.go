package netstub

import "github.com/zabkeeper/zabkeeper/engine/zab"

// Transport moves zab messages between this server and its peers.
//
// Send never blocks: a message to a peer whose link is down may be dropped,
// and the loss shows up as a MsgLinkDown on the receive side, as a reset TCP
// connection would. Messages on one directed link (from, to) arrive in the
// order they were sent.
type Transport interface {
	// Send queues m for m.To. It is safe to call from any goroutine.
	Send(m zab.Message)
	// Recv returns the channel on which messages for this server arrive,
	// MsgLinkDown included. It is closed by Close.
	Recv() <-chan zab.Message
	// Close detaches the transport; later Sends are dropped.
	Close() error
}
