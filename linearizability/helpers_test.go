package linearizability

import (
	"testing"
	"time"
)

// Small constructors for hand-written histories. Times are plain integers.

func mkCreate(s, call, ret int64, path, data string, mode, err int32, name string) Op {
	return Op{Session: s, Call: call, Return: ret, Kind: Create, Path: path, Data: []byte(data), Mode: mode, Err: err, Name: name}
}

func mkSet(s, call, ret int64, path, data string, version, err, newVersion int32) Op {
	return Op{Session: s, Call: call, Return: ret, Kind: SetData, Path: path, Data: []byte(data), Version: version, Err: err, StatVersion: newVersion}
}

func mkDelete(s, call, ret int64, path string, version, err int32) Op {
	return Op{Session: s, Call: call, Return: ret, Kind: Delete, Path: path, Version: version, Err: err}
}

func mkGet(s, call, ret int64, path string, err int32, data string, version int32, synced bool) Op {
	return Op{Session: s, Call: call, Return: ret, Kind: GetData, Path: path, Err: err, RespData: []byte(data), StatVersion: version, SyncedBefore: synced}
}

func mkSync(s, call, ret int64, path string) Op {
	return Op{Session: s, Call: call, Return: ret, Kind: Sync, Path: path}
}

func mkClose(s, call, ret int64) Op {
	return Op{Session: s, Call: call, Return: ret, Kind: CloseSession}
}

func hist(ops ...Op) History { return History{Ops: ops} }

func mustCheck(t *testing.T, h History) Result {
	t.Helper()
	res, err := CheckLinearizable(h, 10*time.Second)
	if err != nil {
		t.Fatalf("CheckLinearizable: %v", err)
	}
	if res.Unknown {
		t.Fatalf("check timed out: %v", res)
	}
	return res
}

func requireLinearizable(t *testing.T, h History) Result {
	t.Helper()
	res := mustCheck(t, h)
	if !res.Ok {
		for _, op := range h.Ops {
			t.Log(op.String())
		}
		t.Fatalf("expected linearizable, got %v", res)
	}
	return res
}

func requireNotLinearizable(t *testing.T, h History) Result {
	t.Helper()
	res := mustCheck(t, h)
	if res.Ok {
		for _, op := range h.Ops {
			t.Log(op.String())
		}
		t.Fatalf("expected a linearizability violation, got %v", res)
	}
	return res
}
