package cpustat

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	idle, total, err := Parse("cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if idle != 46828483+16683 {
		t.Errorf("idle = %d, want idle + iowait = %d", idle, 46828483+16683)
	}
	if want := uint64(10132153 + 290696 + 3084719 + 46828483 + 16683 + 25195); total != want {
		t.Errorf("total = %d, want %d", total, want)
	}
	// Steal counts; guest time is inside user time.
	idle, total, err = Parse("cpu  100 2 30 400 5 6 7 8 50 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if idle != 405 || total != 558 {
		t.Errorf("idle %d, total %d; want 405 and 558", idle, total)
	}
	for _, bad := range []string{"", "intr 1 2 3 4 5 6", "cpu0 1 2 3 4 5", "cpu 1 2 3", "cpu 1 2 x 4 5 6"} {
		if _, _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if got := Ticks(46828483 + 16683); got != time.Duration(46828483+16683)*10*time.Millisecond {
		t.Errorf("Ticks = %v", got)
	}
}

func TestReadOnThisMachine(t *testing.T) {
	idle, total, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 || idle > total {
		t.Errorf("idle %d of %d ticks", idle, total)
	}
}
