// Package epollset is an epoll set whose own descriptor Go's netpoller
// watches, for a goroutine that serves many sockets (the server's
// connection pollers, the load generator's event loops): it waits for all
// of them at once, parking like any goroutine while they are quiet
// (RawConn.Read on the set's file), and polls the set with a raw
// epoll_wait that never blocks.
package epollset
