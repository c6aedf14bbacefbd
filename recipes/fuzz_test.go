package recipes_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/zabkeeper/zabkeeper/recipes"
)

// FuzzServiceInstance decodes znode data as a service instance (what a
// cache reads from any writer): it never panics, and what decodes encodes
// and decodes again to the same instance.
func FuzzServiceInstance(f *testing.F) {
	f.Add([]byte(`{"name":"api","id":"1","address":"h","port":80,"sslPort":null,"payload":null,` +
		`"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true}]},"enabled":true}`))
	f.Add([]byte(`{"name":"a","id":"b","payload":{"@class":"x"}}`))
	f.Add([]byte(`{"uriSpec":{"parts":[{"value":"port","variable":true}]},"port":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in recipes.ServiceInstance
		if json.Unmarshal(data, &in) != nil {
			return
		}
		_ = in.URI()
		out, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("re-encoding a decoded instance: %v", err)
		}
		var again recipes.ServiceInstance
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("decoding our own encoding %s: %v", out, err)
		}
		out2, _ := json.Marshal(again)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed the instance:\n%s\n%s", out, out2)
		}
	})
}

// FuzzParseURISpec parses URI templates: a parsed template rebuilds to the
// text it came from.
func FuzzParseURISpec(f *testing.F) {
	for _, s := range []string{"{scheme}://{address}:{port}", "http://x/{id}", "{a{b}", "}{", "{unclosed", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := recipes.ParseURISpec(s)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, p := range spec.Parts {
			if p.Variable {
				b.WriteString("{" + p.Value + "}")
			} else {
				b.WriteString(p.Value)
			}
		}
		if b.String() != s {
			t.Fatalf("parts of %q rebuild to %q", s, b.String())
		}
		_ = spec.Build(recipes.ServiceInstance{})
	})
}
