package recipes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// ServiceType says how an instance is registered (curator-x-discovery's
// ServiceType).
type ServiceType string

// The service types of curator-x-discovery.
const (
	// Dynamic instances are ephemeral znodes: they vanish with their session
	// and are registered again when a new session starts.
	Dynamic ServiceType = "DYNAMIC"
	// DynamicSequential instances are ephemeral sequential znodes.
	DynamicSequential ServiceType = "DYNAMIC_SEQUENTIAL"
	// Static instances are persistent znodes.
	Static ServiceType = "STATIC"
	// Permanent instances are persistent znodes meant never to be removed.
	Permanent ServiceType = "PERMANENT"
)

// ServiceInstance is one instance of a service in curator-x-discovery's JSON
// format, stored at <basePath>/<name>/<id>.
type ServiceInstance struct {
	// Name is the service's name.
	Name string `json:"name"`
	// ID identifies the instance within the service.
	ID string `json:"id"`
	// Address is the host name or IP the instance serves on.
	Address string `json:"address"`
	// Port is the plain port, or nil.
	Port *int `json:"port"`
	// SSLPort is the TLS port, or nil.
	SSLPort *int `json:"sslPort"`
	// Payload is the instance's payload as Curator's Jackson mapper writes it
	// (for a Java payload class, an object with an "@class" member); nil is
	// JSON null.
	Payload json.RawMessage `json:"payload"`
	// RegistrationTimeUTC is the registration time in Unix milliseconds.
	RegistrationTimeUTC int64 `json:"registrationTimeUTC"`
	// ServiceType says how the instance is registered.
	ServiceType ServiceType `json:"serviceType"`
	// URISpec is the template of the instance's URI, or nil.
	URISpec *URISpec `json:"uriSpec"`
	// Enabled instances are handed out by providers; JSON without the field
	// (written by Curator before 2.11) decodes as enabled.
	Enabled bool `json:"enabled"`
}

// NewInstance returns an enabled Dynamic instance of service name with a
// random id, registered now.
func NewInstance(name, address string, port int) ServiceInstance {
	return ServiceInstance{
		Name: name, ID: newUUID(), Address: address, Port: &port,
		RegistrationTimeUTC: time.Now().UnixMilli(), ServiceType: Dynamic, Enabled: true,
	}
}

// UnmarshalJSON decodes Curator's format; a missing "enabled" means true.
func (s *ServiceInstance) UnmarshalJSON(b []byte) error {
	type plain ServiceInstance
	p := plain{Enabled: true}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = ServiceInstance(p)
	return nil
}

// URI builds the instance's URI from its URISpec ("" without one).
func (s ServiceInstance) URI() string {
	if s.URISpec == nil {
		return ""
	}
	return s.URISpec.Build(s)
}

// URISpec is curator-x-discovery's URI template: literal parts and
// {variable} parts.
type URISpec struct {
	// Parts are the template's pieces in order.
	Parts []URIPart `json:"parts"`
}

// URIPart is one piece of a URISpec.
type URIPart struct {
	// Value is the literal text or the variable's name.
	Value string `json:"value"`
	// Variable says whether Value names a variable.
	Variable bool `json:"variable"`
}

// ParseURISpec splits a template such as "{scheme}://{address}:{port}/api".
func ParseURISpec(template string) (*URISpec, error) {
	spec := &URISpec{}
	for template != "" {
		open := strings.IndexByte(template, '{')
		if open < 0 {
			spec.Parts = append(spec.Parts, URIPart{Value: template})
			break
		}
		if open > 0 {
			spec.Parts = append(spec.Parts, URIPart{Value: template[:open]})
		}
		end := strings.IndexByte(template[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("recipes: uri spec %q: unclosed {", template)
		}
		spec.Parts = append(spec.Parts, URIPart{Value: template[open+1 : open+end], Variable: true})
		template = template[open+end+1:]
	}
	return spec, nil
}

// Build fills the template's variables from inst: scheme (https with an SSL
// port, else http), name, id, address, port, ssl-port, as Curator does.
// Unknown variables are left as {name}.
func (u *URISpec) Build(inst ServiceInstance) string {
	var b strings.Builder
	for _, p := range u.Parts {
		if !p.Variable {
			b.WriteString(p.Value)
			continue
		}
		switch p.Value {
		case "scheme":
			if inst.SSLPort != nil {
				b.WriteString("https")
			} else {
				b.WriteString("http")
			}
		case "name":
			b.WriteString(inst.Name)
		case "id":
			b.WriteString(inst.ID)
		case "address":
			b.WriteString(inst.Address)
		case "port":
			if inst.Port != nil {
				b.WriteString(strconv.Itoa(*inst.Port))
			}
		case "ssl-port":
			if inst.SSLPort != nil {
				b.WriteString(strconv.Itoa(*inst.SSLPort))
			}
		default:
			b.WriteString("{" + p.Value + "}")
		}
	}
	return b.String()
}

// Discovery registers and queries service instances under a base path in
// curator-x-discovery's layout, so Go and Curator services find each other.
// Dynamic instances it registered are registered again whenever a new
// session starts, until Unregister or Close.
type Discovery struct {
	c    *Client
	base string
	log  *slog.Logger

	mu   sync.Mutex
	regs map[string]*registration // by instance path

	kick     chan struct{} // a registration was added
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type registration struct {
	inst    ServiceInstance
	session int64 // the session the znode was last written in (0: not yet)
}

// NewDiscovery returns a Discovery on basePath (for example "/services").
func NewDiscovery(c *Client, basePath string) (*Discovery, error) {
	if err := validatePath(basePath); err != nil {
		return nil, err
	}
	d := &Discovery{
		c: c, base: basePath, log: slog.Default().With("recipe", "discovery", "base", basePath),
		regs: map[string]*registration{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go d.keepRegistered()
	return d, nil
}

func (d *Discovery) servicePath(name string) string { return join(d.base, name) }

func (d *Discovery) instancePath(inst ServiceInstance) string {
	return join(d.servicePath(inst.Name), inst.ID)
}

func checkInstance(inst ServiceInstance) error {
	if inst.Name == "" || inst.ID == "" || strings.Contains(inst.Name, "/") || strings.Contains(inst.ID, "/") {
		return fmt.Errorf("recipes: service instance needs a name and an id without '/' (got %q, %q)", inst.Name, inst.ID)
	}
	switch inst.ServiceType {
	case Dynamic, DynamicSequential, Static, Permanent:
		return nil
	}
	return fmt.Errorf("recipes: service instance %s: unknown service type %q", inst.ID, inst.ServiceType)
}

// Register writes inst and keeps it registered (Dynamic instances come back
// after a session expiry) until Unregister or Close.
func (d *Discovery) Register(ctx context.Context, inst ServiceInstance) error {
	if err := checkInstance(inst); err != nil {
		return err
	}
	g, err := d.c.session(ctx)
	if err != nil {
		return err
	}
	if err := d.write(inst, g.session); err != nil {
		return err
	}
	d.mu.Lock()
	d.regs[d.instancePath(inst)] = &registration{inst: inst, session: g.session}
	d.mu.Unlock()
	select { // the session may have changed meanwhile: let the loop look
	case d.kick <- struct{}{}:
	default:
	}
	return nil
}

// write creates the instance's znode in session, replacing a znode of the
// same id (Curator deletes and re-creates it so that watchers fire).
func (d *Discovery) write(inst ServiceInstance, session int64) error {
	data, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("recipes: encode instance %s: %w", inst.ID, err)
	}
	flags := int32(zk.FlagPersistent)
	switch inst.ServiceType {
	case Dynamic:
		flags = zk.FlagEphemeral
	case DynamicSequential:
		flags = zk.FlagEphemeralSequential
	}
	path := d.instancePath(inst)
	for try := 0; try < 3; try++ {
		_, err = d.c.create(path, data, flags)
		if !errors.Is(err, zk.ErrNodeExists) {
			break
		}
		// Ours already (a retried create that went through)? Then done.
		_, stat, gerr := d.c.conn.Get(path)
		if gerr == nil && flags&zk.FlagEphemeral != 0 && stat.EphemeralOwner == session {
			_, err = d.c.conn.Set(path, data, -1)
			break
		}
		if derr := d.c.conn.Delete(path, -1); derr != nil && !errors.Is(derr, zk.ErrNoNode) {
			err = derr
			break
		}
	}
	if err != nil {
		return fmt.Errorf("recipes: register %s: %w", path, err)
	}
	return nil
}

// Update rewrites a registered instance's data (address, payload, enabled).
func (d *Discovery) Update(ctx context.Context, inst ServiceInstance) error {
	if err := checkInstance(inst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	path := d.instancePath(inst)
	d.mu.Lock()
	reg, ok := d.regs[path]
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("recipes: update %s: not registered here", path)
	}
	data, err := json.Marshal(inst)
	if err != nil {
		return fmt.Errorf("recipes: encode instance %s: %w", inst.ID, err)
	}
	if _, err := d.c.conn.Set(path, data, -1); err != nil {
		return fmt.Errorf("recipes: update %s: %w", path, err)
	}
	d.mu.Lock()
	reg.inst = inst
	d.mu.Unlock()
	return nil
}

// Unregister removes the instance and stops keeping it registered.
func (d *Discovery) Unregister(ctx context.Context, inst ServiceInstance) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	path := d.instancePath(inst)
	d.mu.Lock()
	delete(d.regs, path)
	d.mu.Unlock()
	if err := d.c.conn.Delete(path, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("recipes: unregister %s: %w", path, err)
	}
	return nil
}

// Names lists the services under the base path.
func (d *Discovery) Names(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	names, _, err := d.c.conn.Children(d.base)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recipes: list services: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// Instances lists the instances of service name, sorted by id.
func (d *Discovery) Instances(ctx context.Context, name string) ([]ServiceInstance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := d.servicePath(name)
	ids, _, err := d.c.conn.Children(dir)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recipes: list instances of %s: %w", name, err)
	}
	out := make([]ServiceInstance, 0, len(ids))
	for _, id := range ids {
		inst, err := d.read(join(dir, id))
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, inst)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Instance reads one instance; the error wraps zk.ErrNoNode if it is not
// registered.
func (d *Discovery) Instance(ctx context.Context, name, id string) (ServiceInstance, error) {
	if err := ctx.Err(); err != nil {
		return ServiceInstance{}, err
	}
	return d.read(join(d.servicePath(name), id))
}

func (d *Discovery) read(path string) (ServiceInstance, error) {
	data, _, err := d.c.conn.Get(path)
	if err != nil {
		return ServiceInstance{}, fmt.Errorf("recipes: read instance %s: %w", path, err)
	}
	return decodeInstance(path, data)
}

func decodeInstance(path string, data []byte) (ServiceInstance, error) {
	var inst ServiceInstance
	if err := json.Unmarshal(data, &inst); err != nil {
		return ServiceInstance{}, fmt.Errorf("recipes: decode instance %s: %w", path, err)
	}
	return inst, nil
}

// Close unregisters every instance registered here (as Curator's close
// does) and stops.
func (d *Discovery) Close() error {
	d.stopOnce.Do(func() { close(d.stop) })
	<-d.done
	d.mu.Lock()
	paths := make([]string, 0, len(d.regs))
	for p := range d.regs {
		paths = append(paths, p)
	}
	d.regs = map[string]*registration{}
	d.mu.Unlock()
	var errs []error
	for _, p := range paths {
		if err := d.c.conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrClosing) {
			errs = append(errs, fmt.Errorf("recipes: unregister %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// keepRegistered writes every registration again in each new session.
func (d *Discovery) keepRegistered() {
	defer close(d.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.stop:
		case <-d.done:
		}
		cancel()
	}()
	for {
		g, err := d.c.session(ctx)
		if err != nil {
			return
		}
		d.mu.Lock()
		var todo []*registration
		for _, r := range d.regs {
			if r.session != g.session && (r.inst.ServiceType == Dynamic || r.inst.ServiceType == DynamicSequential) {
				todo = append(todo, r)
			}
		}
		d.mu.Unlock()
		failed := false
		for _, r := range todo {
			d.mu.Lock()
			inst, current := r.inst, d.regs[d.instancePath(r.inst)] == r
			d.mu.Unlock()
			if !current {
				continue
			}
			if err := d.write(inst, g.session); err != nil {
				d.log.Warn("register again", "id", inst.ID, "err", err)
				failed = true
				continue
			}
			d.mu.Lock()
			r.session = g.session
			d.mu.Unlock()
		}
		if failed {
			_ = settle(ctx, g)
			continue
		}
		select {
		case <-g.lost:
		case <-d.kick:
		case <-ctx.Done():
			return
		}
	}
}
