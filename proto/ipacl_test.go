package proto

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIPACL(t *testing.T) {
	for id, ok := range map[string]bool{"10.0.0.1": true, "10.0.0.0/8": true, "10.0.0.0/33": false, "10.0.0.0/-1": false,
		"::1": true, "fe80::/10": true, "fe80::/129": false, "host": false, "10.0.0": false, "10.0.0.1/x": false} {
		require.Equal(t, ok, ValidIPACL(id), "%q", id)
	}
	require.True(t, IPACLMatches("10.1.2.3", "10.0.0.0/8"))
	require.False(t, IPACLMatches("11.1.2.3", "10.0.0.0/8"))
	require.True(t, IPACLMatches("10.1.2.3", "10.1.2.3"))
	require.True(t, IPACLMatches("2001:db8::5", "2001:db8::/32"))
	require.False(t, IPACLMatches("10.1.2.3", "::/0"))
}
