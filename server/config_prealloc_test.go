package server

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// preAllocSize (KiB, ZooKeeper's zookeeper.preAllocSize) sizes the zero
// fill of the transaction log files; 0 turns it off.
func TestParseConfigPreAllocSize(t *testing.T) {
	require.Equal(t, 65536, DefaultConfig().PreAllocSizeKB)
	require.Equal(t, 1024, parse(t, "preAllocSize=1024\n").PreAllocSizeKB)
	require.Equal(t, 16, parse(t, "zookeeper.preAllocSize=16\n").PreAllocSizeKB)
	require.Equal(t, 0, parse(t, "preAllocSize=0\n").PreAllocSizeKB)
	_, err := ParseConfig(strings.NewReader("preAllocSize=-1\n"), nil)
	require.Error(t, err)
}
