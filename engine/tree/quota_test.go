package tree

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zabkeeper/zabkeeper/proto"
)

func (h *harness) data(path string) string {
	resp, err := h.tr.Read(anyone, 0, proto.OpGetData, &proto.GetDataRequest{Path: path})
	require.Equal(h.t, proto.ErrOK, err, "get %s", path)
	return string(resp.(*proto.GetDataResponse).Data)
}

// setQuota does what zkCli's setquota does: the quota parents, the limits
// node, then a stats node holding count=0,bytes=0.
func (h *harness) setQuota(path, limits string) {
	h.mustCreate("/zookeeper/quota"+path, 0)
	require.Equal(h.t, proto.ErrOK, h.create(anyone, "/zookeeper/quota"+path+"/zookeeper_limits", limits, 0).Err)
	require.Equal(h.t, proto.ErrOK, h.create(anyone, "/zookeeper/quota"+path+"/zookeeper_stats", "count=0,bytes=0", 0).Err)
}

func TestStatsTrackFormatMatchesZooKeeper(t *testing.T) {
	st := parseStatsTrack([]byte("count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=20"))
	require.Equal(t, int64(10), st.get("count"))
	require.Equal(t, int64(-1), st.get("bytes"))
	require.Equal(t, int64(20), st.get("countHardLimit"))
	require.Equal(t, "count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=20", string(st.bytes()))
	require.Equal(t, "count=3,bytes=7", string(parseStatsTrack([]byte("count=3,bytes=7")).bytes()))
	require.Equal(t, int64(-1), parseStatsTrack([]byte("garbage,count=x")).get("count"))
}

func TestQuotaStatsFollowTheSubtree(t *testing.T) {
	h := newHarness(t, Options{})
	h.mustCreate("/a", 0)
	require.Equal(t, proto.ErrOK, h.create(anyone, "/a/b", "12345", 0).Err)
	h.setQuota("/a", "count=5,bytes=-1")
	require.Equal(t, "count=2,bytes=5", h.data("/zookeeper/quota/a/zookeeper_stats"), "creating the stats node counts the subtree")

	require.Equal(t, proto.ErrOK, h.create(anyone, "/a/b/c", "xy", 0).Err)
	require.Equal(t, "count=3,bytes=7", h.data("/zookeeper/quota/a/zookeeper_stats"))
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/a/b", Data: []byte("1"), Version: -1}).Err)
	require.Equal(t, "count=3,bytes=3", h.data("/zookeeper/quota/a/zookeeper_stats"))
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/a/b/c", Version: -1}).Err)
	require.Equal(t, "count=2,bytes=1", h.data("/zookeeper/quota/a/zookeeper_stats"))
	h.mustCreate("/other", 0) // outside the quota
	require.Equal(t, "count=2,bytes=1", h.data("/zookeeper/quota/a/zookeeper_stats"))

	// A snapshot carries the stats and the loaded tree keeps counting.
	var buf bytes.Buffer
	_, err := h.tr.Snapshot().Write(&buf, nil)
	require.NoError(t, err)
	loaded, err := load(buf.Bytes(), Options{})
	require.NoError(t, err)
	require.Equal(t, h.tr.Digest(), loaded.Digest())
	h.tr = loaded
	require.Equal(t, proto.ErrOK, h.create(anyone, "/a/z", "", 0).Err)
	require.Equal(t, "count=3,bytes=1", h.data("/zookeeper/quota/a/zookeeper_stats"))

	// delquota: the limits node goes, counting stops.
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/zookeeper/quota/a/zookeeper_limits", Version: -1}).Err)
	require.Equal(t, proto.ErrOK, h.create(anyone, "/a/y", "", 0).Err)
	require.Equal(t, "count=3,bytes=1", h.data("/zookeeper/quota/a/zookeeper_stats"))
}

func TestQuotaEnforcedAtHardLimits(t *testing.T) {
	h := newHarness(t, Options{EnforceQuota: true})
	h.mustCreate("/q", 0)
	h.setQuota("/q", "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3")
	require.Equal(t, proto.ErrOK, h.create(anyone, "/q/a", "12345", 0).Err)
	require.Equal(t, proto.ErrOK, h.create(anyone, "/q/b", "", 0).Err)
	require.Equal(t, proto.ErrQuotaExceeded, h.create(anyone, "/q/c", "", 0).Err, "a fourth node passes countHardLimit=3")
	require.False(t, h.exists("/q/c"))
	require.Equal(t, proto.ErrQuotaExceeded, h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/q/b", Data: []byte("123456"), Version: -1}).Err)
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpSetData, &proto.SetDataRequest{Path: "/q/b", Data: []byte("12345"), Version: -1}).Err)
	w := h.tr.TakeQuotaWarnings()
	require.Len(t, w, 2)
	require.True(t, w[0].Denied && w[0].Hard && w[0].What == "count")
	require.Equal(t, "bytes", w[1].What)

	// Requests prepared together count each other: of two creates prepared
	// before either applies, the second is refused.
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/q/b", Version: -1}).Err)
	t1 := h.prepare(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/q/x", ACL: proto.OpenACLUnsafe})
	t2 := h.prepare(anyone, proto.OpCreate, &proto.CreateRequest{Path: "/q/y", ACL: proto.OpenACLUnsafe})
	require.Equal(t, proto.OpCreate, t1.Type)
	require.Equal(t, proto.OpError, t2.Type)
	require.Equal(t, proto.ErrQuotaExceeded, t2.Err)
	// A multi counts its own ops.
	h.tr.Apply(t1)
	h.tr.Apply(t2)
	require.Equal(t, proto.ErrOK, h.do(anyone, proto.OpDelete, &proto.DeleteRequest{Path: "/q/x", Version: -1}).Err)
	res := h.do(anyone, proto.OpMulti, &proto.MultiRequest{Ops: []proto.MultiOp{
		{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/q/m1", ACL: proto.OpenACLUnsafe}},
		{Type: proto.OpCreate, Req: &proto.CreateRequest{Path: "/q/m2", ACL: proto.OpenACLUnsafe}},
	}})
	mr := res.Resp.(*proto.MultiResponse)
	require.Equal(t, proto.ErrQuotaExceeded, mr.Results[1].Err)
	require.False(t, h.exists("/q/m1"), "the multi failed whole")
}

func TestQuotaSoftLimitOnlyWarns(t *testing.T) {
	h := newHarness(t, Options{EnforceQuota: true})
	h.mustCreate("/s", 0)
	h.setQuota("/s", "count=2,bytes=-1")
	h.tr.TakeQuotaWarnings()
	require.Equal(t, proto.ErrOK, h.create(anyone, "/s/a", "", 0).Err)
	require.Empty(t, h.tr.TakeQuotaWarnings())
	require.Equal(t, proto.ErrOK, h.create(anyone, "/s/b", "", 0).Err, "a soft limit never refuses")
	w := h.tr.TakeQuotaWarnings()
	require.Len(t, w, 1)
	require.False(t, w[0].Hard)
	require.Equal(t, "Quota exceeded: /s [current count=3, soft limit=2] by /s/b", w[0].String())

	// Without enforcement a hard limit only warns too.
	h2 := newHarness(t, Options{})
	h2.mustCreate("/s", 0)
	h2.setQuota("/s", "count=-1,bytes=-1=;countHardLimit=1")
	require.Equal(t, proto.ErrOK, h2.create(anyone, "/s/a", "", 0).Err)
	w = h2.tr.TakeQuotaWarnings()
	require.Len(t, w, 1)
	require.True(t, w[0].Hard)
	require.False(t, w[0].Denied)
}
