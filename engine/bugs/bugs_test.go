package bugs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNamesRoundTrip(t *testing.T) {
	require.Len(t, All(), 16)
	for _, b := range All() {
		got, ok := Parse(b.String())
		require.True(t, ok, b.String())
		require.Equal(t, b, got)
	}
	_, ok := Parse("no-such-bug")
	require.False(t, ok)
}

// TestNoBugsInProduction: a build without the simbugs tag cannot plant
// anything.
func TestNoBugsInProduction(t *testing.T) {
	if Enabled {
		t.Skip("built with -tags simbugs")
	}
	for _, b := range All() {
		require.False(t, Active(b))
		require.Panics(t, func() { Set(b) })
	}
}
