package autojoin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zabkeeper/zabkeeper/server"
)

// loadConfig writes a zoo.cfg listing servers 1..3 with autojoin on and
// myid id, and loads it as `zabkeeper server` does.
func loadConfig(t *testing.T, dataDir string, id string) *server.Config {
	t.Helper()
	t.Setenv("MYHOST", "x")
	n, _ := strconv.Atoi(id)
	return loadZooCfg(t, dataDir, n, []string{
		"clientPort=2181",
		"server.1=zk-0.zk-hs:2888:3888", "server.2=zk-1.zk-hs:2888:3888", "server.3=zk-2.zk-hs:2888:3888",
		"zabkeeper.autojoin=true", "zabkeeper.autojoin.server=zk-${MYHOST}.zk-hs:2888:3888;2181",
	})
}

// loadZooCfg writes a zoo.cfg of lines with dataDir and myid id, and
// loads it with server.LoadConfig.
func loadZooCfg(t *testing.T, dataDir string, id int, lines []string) *server.Config {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "myid"), []byte(strconv.Itoa(id)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "zoo.cfg")
	text := "dataDir=" + dataDir + "\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := server.LoadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestPrepareAddsANewServerAsAnObserverAndARestartChangesNothing(t *testing.T) {
	data := t.TempDir()
	f := newFake(line1, line2, line3)
	cfg := loadConfig(t, data, "4")
	s := &Start{Config: cfg, Dial: f.dial, Backoff: testBackoff(&fakeSleep{})}
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if me := cfg.Servers[4]; !me.Observer || len(cfg.Servers) != 4 || !s.promote || f.reconfigs != 1 {
		t.Fatalf("after Prepare: self %+v, %d servers, promote %v, %d reconfigs", me, len(cfg.Servers), s.promote, f.reconfigs)
	}
	saved, ok, err := LoadMembers(data)
	if err != nil || !ok || saved.Version != f.config().Version {
		t.Fatalf("members file: %v %v version %x", err, ok, saved.Version)
	}
	if got := s.joiner.Seeds; len(got) != 3 || got[0] != "zk-0.zk-hs:2181" {
		t.Fatalf("seeds %v, want zoo.cfg's three servers' client addresses", got)
	}

	// The promotion happened; then the pod restarts on the same data.
	if _, err := (&Joiner{Self: s.joiner.Self, Seeds: []string{"a:1"}, Dial: f.dial}).Promote(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	n := f.reconfigs
	cfg = loadConfig(t, data, "4")
	s = &Start{Config: cfg, Dial: f.dial, Backoff: testBackoff(&fakeSleep{})}
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if me := cfg.Servers[4]; me.Observer || s.promote || f.reconfigs != n {
		t.Fatalf("restart: self %+v, promote %v, %d reconfigs; want a participant and nothing done", me, s.promote, f.reconfigs-n)
	}
}

func TestPrepareDoesNotAddARemovedServerBack(t *testing.T) {
	data := t.TempDir()
	f := newFake(line1, line2, line3, "server.4=zk-x.zk-hs:2888:3888:participant;0.0.0.0:2181")
	if err := SaveMembers(data, f.config()); err != nil {
		t.Fatal(err)
	}
	// An operator removes server 4; its pod restarts before the scale-down.
	if _, err := (&Joiner{Seeds: []string{"a:1"}, Dial: f.dial}).Remove(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	n := f.reconfigs
	s := &Start{Config: loadConfig(t, data, "4"), Dial: f.dial, Backoff: testBackoff(&fakeSleep{})}
	if err := s.Prepare(context.Background()); !errors.Is(err, ErrRemoved) || f.reconfigs != n {
		t.Fatalf("Prepare of a removed server = %v (%d reconfigs), want ErrRemoved and none", err, f.reconfigs-n)
	}
}

func TestPrepareWithoutARunningEnsemble(t *testing.T) {
	t.Run("zoo.cfg's member starts with zoo.cfg", func(t *testing.T) {
		f := newFake(line1)
		f.down = true
		cfg := loadConfig(t, t.TempDir(), "2")
		s := &Start{Config: cfg, Dial: f.dial, Backoff: testBackoff(&fakeSleep{})}
		if err := s.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(cfg.Servers) != 3 || f.dials != 1 {
			t.Fatalf("%d servers after %d dials, want zoo.cfg's 3 after one look", len(cfg.Servers), f.dials)
		}
	})
	t.Run("a saved newer configuration wins over zoo.cfg", func(t *testing.T) {
		data := t.TempDir()
		grown := newFake(line1, line2, line3, "server.4=zk-3.zk-hs:2888:3888:participant;0.0.0.0:2181",
			"server.5=zk-4.zk-hs:2888:3888:participant;0.0.0.0:2181")
		if err := SaveMembers(data, grown.config()); err != nil {
			t.Fatal(err)
		}
		grown.down = true
		cfg := loadConfig(t, data, "1")
		s := &Start{Config: cfg, Dial: grown.dial, Backoff: testBackoff(&fakeSleep{})}
		if err := s.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(cfg.Servers) != 5 || cfg.Dynamic.Version != grown.config().Version {
			t.Fatalf("%d servers, version %x; want the saved 5", len(cfg.Servers), cfg.Dynamic.Version)
		}
	})
	t.Run("a new server keeps looking", func(t *testing.T) {
		f := newFake(line1)
		f.down = true
		sl := &fakeSleep{limit: 3}
		s := &Start{Config: loadConfig(t, t.TempDir(), "4"), Dial: f.dial, Backoff: testBackoff(sl)}
		if err := s.Prepare(context.Background()); !errors.Is(err, context.Canceled) || f.dials != 3 {
			t.Fatalf("Prepare = %v after %d dials, want it still looking when the wait ended", err, f.dials)
		}
	})
}

func TestPrepareDemotesAParticipantWhoseDataIsGone(t *testing.T) {
	lines := []string{line1, line2, line3, "server.4=zk-x.zk-hs:2888:3888:participant;0.0.0.0:2181"}
	f := newFake(lines...)
	cfg := loadConfig(t, t.TempDir(), "4")
	s := &Start{Config: cfg, Dial: f.dial, Backoff: testBackoff(&fakeSleep{})}
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if me := cfg.Servers[4]; !me.Observer || !s.promote || f.reconfigs != 1 {
		t.Fatalf("empty volume: self %+v, promote %v, %d reconfigs; want an observer to promote after one reconfig", me, s.promote, f.reconfigs)
	}

	// An ensemble without reconfig (a zabkeeper before reconfig) cannot
	// demote it: it starts as the participant it is, as without autojoin.
	old := newFake(lines...)
	old.fail = []error{errUnimplemented}
	cfg = loadConfig(t, t.TempDir(), "4")
	s = &Start{Config: cfg, Dial: old.dial, Backoff: testBackoff(&fakeSleep{})}
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if me := cfg.Servers[4]; me.Observer || s.promote {
		t.Fatalf("without reconfig: self %+v, promote %v; want the participant as named", me, s.promote)
	}

	// A server with a history but no members file (autojoin turned on in
	// a running deployment) stays what it is.
	kept := newFake(lines...)
	data := t.TempDir()
	if err := os.MkdirAll(filepath.Join(data, "version-2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "version-2", "log.100000001"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = loadConfig(t, data, "4")
	s = &Start{Config: cfg, Dial: kept.dial, Backoff: testBackoff(&fakeSleep{})}
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	if me := cfg.Servers[4]; me.Observer || s.promote || kept.reconfigs != 0 {
		t.Fatalf("with its data: self %+v, promote %v, %d reconfigs; want nothing changed", me, s.promote, kept.reconfigs)
	}
}
