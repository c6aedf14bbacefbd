package recipes_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/netstub"
	"github.com/zabkeeper/zabkeeper/recipes"
)

func ids(insts []recipes.ServiceInstance) []string {
	out := make([]string, len(insts))
	for i, in := range insts {
		out[i] = in.ID
	}
	return out
}

func TestDiscovery(t *testing.T) {
	eachServer(t, func(t *testing.T, addr string) {
		base := uniquePath("services")
		reg, err := recipes.NewDiscovery(connect(t, addr, sessionTimeout), base)
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Close() })
		watcher, err := recipes.NewDiscovery(connect(t, addr, sessionTimeout), base)
		require.NoError(t, err)
		t.Cleanup(func() { _ = watcher.Close() })
		cache := watcher.NewCache("api")
		t.Cleanup(cache.Close)
		require.NoError(t, cache.Ready(ctxT(t)))
		require.Empty(t, cache.Instances())

		var insts []recipes.ServiceInstance
		for i, id := range []string{"i1", "i2", "i3"} {
			in := recipes.NewInstance("api", "10.0.0.1", 8000+i)
			in.ID = id
			in.URISpec, err = recipes.ParseURISpec("{scheme}://{address}:{port}/v1")
			require.NoError(t, err)
			require.NoError(t, reg.Register(ctxT(t), in))
			insts = append(insts, in)
		}
		waitFor(t, "three instances cached", func() bool { return len(cache.Instances()) == 3 })
		got := cache.Instances()
		require.Equal(t, []string{"i1", "i2", "i3"}, ids(got))
		require.Equal(t, "http://10.0.0.1:8001/v1", got[1].URI())
		names, err := watcher.Names(ctxT(t))
		require.NoError(t, err)
		require.Equal(t, []string{"api"}, names)

		// Round robin visits each instance in turn; random stays in the set.
		rr := recipes.NewProvider(cache, &recipes.RoundRobinStrategy{})
		var picked []string
		for i := 0; i < 6; i++ {
			in, err := rr.Instance()
			require.NoError(t, err)
			picked = append(picked, in.ID)
		}
		require.Equal(t, []string{"i1", "i2", "i3", "i1", "i2", "i3"}, picked)
		random := recipes.NewProvider(cache, recipes.RandomStrategy{})
		for i := 0; i < 10; i++ {
			in, err := random.Instance()
			require.NoError(t, err)
			require.Contains(t, []string{"i1", "i2", "i3"}, in.ID)
		}

		// An update reaches the cache; a disabled instance is not handed out.
		insts[1].Enabled = false
		require.NoError(t, reg.Update(ctxT(t), insts[1]))
		waitFor(t, "i2 disabled in the cache", func() bool {
			c := cache.Instances()
			return len(c) == 3 && !c[1].Enabled
		})
		for i := 0; i < 4; i++ {
			in, err := rr.Instance()
			require.NoError(t, err)
			require.NotEqual(t, "i2", in.ID)
		}

		require.NoError(t, reg.Unregister(ctxT(t), insts[0]))
		require.NoError(t, reg.Unregister(ctxT(t), insts[2]))
		waitFor(t, "only i2 left", func() bool { return len(cache.Instances()) == 1 })
		_, err = rr.Instance()
		require.ErrorIs(t, err, recipes.ErrNoInstances)
		require.NoError(t, reg.Close())
		waitFor(t, "Close unregisters", func() bool { return len(cache.Instances()) == 0 })
	})
}

// TestDiscoverySessionLoss lets a registrant's session expire: its instance
// leaves the cache, then comes back once the registrant has a new session.
func TestDiscoverySessionLoss(t *testing.T) {
	t.Parallel() // waits for session expiry, mostly idle
	eachServer(t, func(t *testing.T, addr string) {
		base := uniquePath("services-loss")
		pc := connectProxied(t, addr)
		reg, err := recipes.NewDiscovery(pc.Client, base)
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Close() })
		watcher, err := recipes.NewDiscovery(connect(t, addr, sessionTimeout), base)
		require.NoError(t, err)
		cache := watcher.NewCache("db")
		t.Cleanup(cache.Close)
		in := recipes.NewInstance("db", "10.0.0.9", 5432)
		require.NoError(t, reg.Register(ctxT(t), in))
		waitFor(t, "instance cached", func() bool { return len(cache.Instances()) == 1 })
		first := pc.Conn().SessionID()

		pc.proxy.CutOneWay(netstub.ToTarget)
		pc.proxy.CutOneWay(netstub.FromTarget)
		waitFor(t, "instance gone with the expired session", func() bool { return len(cache.Instances()) == 0 })
		pc.proxy.Restore()
		waitFor(t, "instance registered again", func() bool {
			c := cache.Instances()
			return len(c) == 1 && c[0].ID == in.ID
		})
		require.NotEqual(t, first, pc.Conn().SessionID(), "a new session")
	})
}

// TestServiceInstanceJSON checks the format against a document in the form
// curator-x-discovery's JsonInstanceSerializer writes (TestCurator checks
// documents the real one wrote), and that a document without "enabled"
// (older Curator) decodes as enabled.
func TestServiceInstanceJSON(t *testing.T) {
	curator := `{"name":"api","id":"7c8c","address":"10.1.2.3","port":8080,"sslPort":null,` +
		`"payload":{"@class":"java.util.HashMap","k":"v"},"registrationTimeUTC":1700000000000,` +
		`"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},` +
		`{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},` +
		`{"value":"port","variable":true}]},"enabled":true}`
	var in recipes.ServiceInstance
	require.NoError(t, json.Unmarshal([]byte(curator), &in))
	require.Equal(t, "http://10.1.2.3:8080", in.URI())
	require.Equal(t, recipes.Dynamic, in.ServiceType)
	require.JSONEq(t, `{"@class":"java.util.HashMap","k":"v"}`, string(in.Payload))
	out, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, curator, string(out), "a round trip keeps Curator's document")

	var old recipes.ServiceInstance
	require.NoError(t, json.Unmarshal([]byte(`{"name":"a","id":"b","address":"c","port":1,"serviceType":"STATIC"}`), &old))
	require.True(t, old.Enabled)

	spec, err := recipes.ParseURISpec("{scheme}://{address}:{ssl-port}/x")
	require.NoError(t, err)
	ssl := 443
	require.Equal(t, "https://h:443/x", spec.Build(recipes.ServiceInstance{Address: "h", SSLPort: &ssl}))
	_, err = recipes.ParseURISpec("{scheme")
	require.Error(t, err)
}
