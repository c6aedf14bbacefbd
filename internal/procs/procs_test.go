package procs

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLendOnTopOfTheControllersChoice(t *testing.T) {
	start := runtime.GOMAXPROCS(0)
	defer Unmanage(start)

	// Not managed: a loan changes nothing (the operator's GOMAXPROCS).
	back := Lend()
	require.Equal(t, start, runtime.GOMAXPROCS(0))
	back()

	Manage(1, 3)
	require.Equal(t, 1, runtime.GOMAXPROCS(0))
	back1 := Lend()
	require.Equal(t, 2, runtime.GOMAXPROCS(0))
	Set(2) // the controller's choice moves under a loan
	require.Equal(t, 3, runtime.GOMAXPROCS(0))
	back2 := Lend()
	require.Equal(t, 3, runtime.GOMAXPROCS(0), "never past most")
	back2()
	back2() // once
	require.Equal(t, 3, runtime.GOMAXPROCS(0))
	back1()
	require.Equal(t, 2, runtime.GOMAXPROCS(0))
	require.Equal(t, 2, Base())
	Set(1)
	require.Equal(t, 1, runtime.GOMAXPROCS(0))
	Unmanage(start)
	require.Equal(t, start, runtime.GOMAXPROCS(0))
}
