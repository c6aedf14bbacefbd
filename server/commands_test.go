package server

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCommandRegistry: every admin command names a known four-letter word
// (which decides what the loop collects for it), and no name or alias
// belongs to two commands.
func TestCommandRegistry(t *testing.T) {
	seen := map[string]string{}
	for _, c := range commands {
		require.NotEmpty(t, c.names)
		require.True(t, isFourLetterWord(c.word), "%s: word %q", c.names[0], c.word)
		for _, n := range c.names {
			prev, dup := seen[n]
			require.False(t, dup, "%s is a name of both %s and %s", n, prev, c.names[0])
			seen[n] = c.names[0]
		}
		got, ok := lookupCommand(c.names[len(c.names)-1])
		require.True(t, ok)
		require.Equal(t, c.names[0], got.names[0])
	}
	_, ok := lookupCommand("crst")
	require.False(t, ok, "the admin port never changes state")
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"clientPort": "client_port", "dataLogDir": "data_log_dir", "clientPortListenBacklog": "client_port_listen_backlog",
		"serverId": "server_id", "tickTime": "tick_time", "maxClientCnxns": "max_client_cnxns",
	} {
		require.Equal(t, want, snakeCase(in))
	}
}
