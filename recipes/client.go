package recipes

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// ErrClosed is returned by operations on a closed Client or recipe.
var ErrClosed = errors.New("recipes: closed")

// ErrOwnershipLost is the cause of an ownership context cancelled because the
// connection was suspended or the session expired.
var ErrOwnershipLost = errors.New("recipes: ownership may be lost (connection suspended or session expired)")

// ErrReleased is the cause of an ownership context cancelled because the
// owner released it.
var ErrReleased = errors.New("recipes: released")

// Client is a go-zk connection plus what the recipes need to know about it:
// whether it is connected with a session right now, and in which session.
// One Client serves any number of recipes.
type Client struct {
	conn *zk.Conn
	acl  []zk.ACL

	mu      sync.Mutex
	cur     *generation   // the current connected period, or one already lost
	changed chan struct{} // closed and replaced on every state change
	closed  bool
	done    chan struct{} // closed by Close
	// sessionAt is when go-zk last reported a session (zero while it has
	// none); the generation starts sessionGrace later.
	sessionAt time.Time
}

// sessionGrace is how long after go-zk reports a session the recipes wait
// before sending requests. go-zk v1.0.4 reads its last zxid to re-arm
// watches right after the handshake without synchronising with the
// goroutine that reads replies (go-zookeeper/zk PR #35, unmerged): a reply
// to a request written before the re-arm request is a data race. Requests
// sent a moment later queue behind the re-arm request, which orders them.
const sessionGrace = 50 * time.Millisecond

// generation is one uninterrupted period of being connected in one session.
// lost is closed when the period ends (disconnect, expiry, Close).
type generation struct {
	session int64
	lost    chan struct{}
}

func (g *generation) isLost() bool {
	select {
	case <-g.lost:
		return true
	default:
		return false
	}
}

// Connect opens a go-zk session to servers and returns a Client for it.
// opts are go-zk's connection options (zk.WithLogger and the like); the
// session events are observed with an event callback, so none are dropped.
func Connect(servers []string, sessionTimeout time.Duration, opts ...func(*zk.Conn)) (*Client, error) {
	c := newClient()
	conn, _, err := zk.Connect(servers, sessionTimeout, func(zc *zk.Conn) {
		for _, o := range opts {
			o(zc)
		}
	}, zk.WithEventCallback(c.observe))
	if err != nil {
		return nil, fmt.Errorf("recipes: connect: %w", err)
	}
	c.setConn(conn)
	return c, nil
}

// NewClient wraps a connection opened with zk.Connect. The Client reads
// events until it is closed; the caller must not read it as well. go-zk
// drops session events when that channel is full, so a missed disconnect
// could leave an ownership context live too long: prefer Connect, which
// observes events with a callback that never drops them.
func NewClient(conn *zk.Conn, events <-chan zk.Event) *Client {
	c := newClient()
	c.setConn(conn)
	c.observe(zk.Event{Type: zk.EventSession, State: conn.State()})
	go func() {
		for ev := range events {
			c.observe(ev)
		}
	}()
	return c
}

func newClient() *Client {
	g := &generation{lost: make(chan struct{})}
	close(g.lost)
	return &Client{acl: zk.WorldACL(zk.PermAll), cur: g, changed: make(chan struct{}), done: make(chan struct{})}
}

func (c *Client) setConn(conn *zk.Conn) {
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
}

// Conn returns the underlying go-zk connection.
func (c *Client) Conn() *zk.Conn { return c.conn }

// SetACL sets the ACL of the znodes the recipes create (the open ACL by
// default). Call it before using the Client.
func (c *Client) SetACL(acl []zk.ACL) { c.acl = acl }

// Close ends the session (its ephemeral znodes go at once) and cancels every
// ownership context handed out through this Client.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	if !c.cur.isLost() {
		close(c.cur.lost)
	}
	c.notifyLocked()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// observe tracks go-zk's session events. It runs on go-zk's event loop and
// must not block.
func (c *Client) observe(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	switch ev.State {
	case zk.StateHasSession:
		if c.conn == nil {
			return // Connect's callback before setConn; the state is read again below
		}
		sid := c.conn.SessionID()
		if !c.cur.isLost() && c.cur.session == sid {
			return
		}
		if !c.cur.isLost() {
			close(c.cur.lost)
		}
		c.sessionAt = time.Now()
		time.AfterFunc(sessionGrace, c.wake)
	case zk.StateConnected, zk.StateConnectedReadOnly:
		return // a TCP connection, not yet a session
	default: // disconnected, connecting, expired, auth failed
		c.sessionAt = time.Time{}
		if !c.cur.isLost() {
			close(c.cur.lost)
		}
	}
	c.notifyLocked()
}

func (c *Client) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// session returns the current generation if it is connected, or waits for
// the next one.
func (c *Client) session(ctx context.Context) (*generation, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		c.refreshLocked()
		g, changed := c.cur, c.changed
		c.mu.Unlock()
		if !g.isLost() {
			return g, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
			// re-read conn.State(): NewClient's channel may drop events
		}
	}
}

// Connected reports whether the Client has a live session right now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.refreshLocked()
	return !c.cur.isLost()
}

// wake starts the generation once sessionGrace has passed.
func (c *Client) wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.refreshLocked()
	}
}

// refreshLocked starts a generation when go-zk has had a session for
// sessionGrace. It also catches a session no event announced: Connect's
// callback can see HasSession before setConn, and NewClient's channel drops
// events when full.
func (c *Client) refreshLocked() {
	if !c.cur.isLost() || c.conn == nil || c.conn.State() != zk.StateHasSession {
		return
	}
	if c.sessionAt.IsZero() {
		c.sessionAt = time.Now()
		time.AfterFunc(sessionGrace, c.wake)
		return
	}
	if time.Since(c.sessionAt) < sessionGrace {
		return
	}
	c.cur = &generation{session: c.conn.SessionID(), lost: make(chan struct{})}
	c.notifyLocked()
}

// ownership returns a context that is cancelled when g is lost, when release
// is called (cause ErrReleased) or when the Client is closed.
func (c *Client) ownership(g *generation) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	released := make(chan struct{})
	var once sync.Once
	go func() {
		select {
		case <-g.lost:
			cancel(ErrOwnershipLost)
		case <-released:
			// Both may be ready (a latch ends its term when the
			// connection goes): the loss is the cause that matters.
			if g.isLost() {
				cancel(ErrOwnershipLost)
			} else {
				cancel(ErrReleased)
			}
		}
	}()
	return ctx, func() { once.Do(func() { close(released) }) }
}

// retryable reports whether err means the request's outcome is unknown and
// the connection is being re-established.
func retryable(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrSessionMoved)
}

// wait blocks until ch fires, g is lost, or ctx is done. It reports which.
func wait(ctx context.Context, ch <-chan zk.Event, g *generation) error {
	select {
	case <-ch:
		return nil
	case <-g.lost:
		return errLost
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errLost is wait's answer when the connection was suspended.
var errLost = errors.New("recipes: connection suspended")

// ensurePath creates path and its missing ancestors as container znodes
// (as Curator's creatingParentContainersIfNeeded does), so they vanish once
// their last child is gone.
func (c *Client) ensurePath(path string) error {
	if path == "/" || path == "" {
		return nil
	}
	_, err := c.conn.CreateContainer(path, nil, zk.FlagContainer, c.acl)
	switch {
	case err == nil, errors.Is(err, zk.ErrNodeExists):
		return nil
	case errors.Is(err, zk.ErrNoNode):
		if err := c.ensurePath(parent(path)); err != nil {
			return err
		}
		return c.ensurePath(path)
	default:
		return fmt.Errorf("recipes: create container %s: %w", path, err)
	}
}

// create creates path with its parents as containers.
func (c *Client) create(path string, data []byte, flags int32) (string, error) {
	for {
		name, err := c.conn.Create(path, data, flags, c.acl)
		if !errors.Is(err, zk.ErrNoNode) {
			return name, err
		}
		if err := c.ensurePath(parent(path)); err != nil {
			return "", err
		}
	}
}

// createProtected creates dir/_c_<uuid>-name as Curator's withProtection
// does, so that after a connection loss of unknown outcome the node can be
// found again by its prefix instead of leaking. The node belongs to g's
// session; if g is lost the call waits for the next connection and, when the
// session is the same, looks for the node; when the session changed it
// returns errLost (an ephemeral node of the old session is gone with it).
func (c *Client) createProtected(ctx context.Context, g *generation, dir, name string, data []byte, flags int32) (string, error) {
	prefix := "_c_" + newUUID() + "-"
	for {
		path, err := c.create(dir+"/"+prefix+name, data, flags)
		if err == nil {
			return path, nil
		}
		if !retryable(err) {
			return "", fmt.Errorf("recipes: create %s/%s: %w", dir, name, err)
		}
		ng, err := c.session(ctx)
		if err != nil {
			return "", err
		}
		if ng.session != g.session {
			return "", errLost
		}
		g = ng
		children, _, err := c.conn.Children(dir)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			if retryable(err) {
				continue
			}
			return "", fmt.Errorf("recipes: list %s: %w", dir, err)
		}
		for _, ch := range children {
			if strings.HasPrefix(ch, prefix) {
				return dir + "/" + ch, nil
			}
		}
	}
}

// deleteEventually deletes path, retrying through connection losses in the
// background until it is gone, the session that owned it is over (for
// ephemeral nodes, pass that session; 0 for persistent ones) or the Client
// is closed. It does not wait.
func (c *Client) deleteEventually(path string, session int64) {
	if c.conn.Delete(path, -1) == nil {
		return
	}
	go func() {
		for {
			g, err := c.session(context.Background())
			if err != nil || (session != 0 && g.session != session) {
				return
			}
			err = c.conn.Delete(path, -1)
			if err == nil || errors.Is(err, zk.ErrNoNode) || !retryable(err) {
				return
			}
			select {
			case <-g.lost:
			case <-c.done:
				return
			}
		}
	}()
}

// newUUID returns a random (version 4) UUID in its canonical text form, the
// form Curator's protected names use.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("recipes: crypto/rand: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// parent returns the parent of an absolute znode path.
func parent(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return "/"
	}
	return path[:i]
}

// validatePath rejects what ZooKeeper would reject, before any request.
func validatePath(path string) error {
	if path == "" || path[0] != '/' || (len(path) > 1 && strings.HasSuffix(path, "/")) || strings.Contains(path, "//") {
		return fmt.Errorf("recipes: invalid znode path %q", path)
	}
	return nil
}

// join joins a znode directory and a child name.
func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// settle waits, after a request failed with a connection error, until the
// client has noticed (g is lost) or a short while has passed, so retry loops
// do not spin.
func settle(ctx context.Context, g *generation) error {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-g.lost:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
