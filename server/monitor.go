package server

import (
	"strings"
)

// monitorValue is one figure of mntr: its key without "zk_", its text as
// mntr prints it and, for numeric figures, its value. mntr, the admin
// "monitor" command and the Prometheus gauges all read this one list, so a
// figure added here shows up in all three under the same name.
type monitorValue struct {
	key     string
	text    string
	num     float64
	numeric bool
}

// monitorValues lists mntr's figures in ZooKeeper's order.
func monitorValues(info ServerInfo) []monitorValue {
	var out []monitorValue
	str := func(k, v string) { out = append(out, monitorValue{key: k, text: v}) }
	i64 := func(k string, v int64) {
		out = append(out, monitorValue{key: k, text: flwI64toa(v), num: float64(v), numeric: true})
	}
	i := func(k string, v int) { i64(k, int64(v)) }
	str("version", info.Version)
	str("server_state", info.Mode)
	out = append(out, monitorValue{key: "avg_latency", text: flwAvg(info.AvgLatency), num: info.AvgLatency, numeric: true})
	out = append(out, monitorValue{key: "max_latency", text: flwMs(info.MaxLatency), num: info.MaxLatency, numeric: true})
	out = append(out, monitorValue{key: "min_latency", text: flwMs(info.MinLatency), num: info.MinLatency, numeric: true})
	i64("packets_received", info.Received)
	i64("packets_sent", info.Sent)
	i("num_alive_connections", info.Connections)
	i("outstanding_requests", info.Outstanding)
	i("znode_count", info.NodeCount)
	i("watch_count", info.WatchCount)
	i("ephemerals_count", info.Ephemerals)
	i64("approximate_data_size", info.ApproxDataSize)
	i64("open_file_descriptor_count", info.OpenFDs)
	i64("max_file_descriptor_count", info.MaxFDs)
	i64("uptime", info.Uptime.Milliseconds())
	i("global_sessions", info.Sessions)
	i("local_sessions", info.LocalSessions)
	i64("data_dir_size", info.DataDirSize)
	i64("log_dir_size", info.LogDirSize)
	i64("last_proposal_size", info.ProposalSizes[0])
	i64("min_proposal_size", info.ProposalSizes[1])
	i64("max_proposal_size", info.ProposalSizes[2])
	i64("last_client_response_size", info.ResponseSizes[0])
	i64("min_client_response_size", info.ResponseSizes[1])
	i64("max_client_response_size", info.ResponseSizes[2])
	if info.ClientTLS {
		i64("outstanding_tls_handshake", info.OutstandingTLSHandshakes)
		i64("tls_handshake_exceeded", info.TLSHandshakeExceeded)
		i64("unsuccessful_handshake", info.UnsuccessfulHandshakes)
	}
	i64("digest_mismatches_count", info.DigestMismatches)
	if len(info.DuplicateIDs) > 0 {
		ids := make([]string, len(info.DuplicateIDs))
		for i, id := range info.DuplicateIDs {
			ids[i] = flwI64toa(id)
		}
		str("duplicate_server_ids", strings.Join(ids, ","))
	}
	if info.QuorumSize > 0 {
		i64("epoch", info.Epoch)
		i64("zxid", info.Zxid)
		i("quorum_size", info.QuorumSize)
	}
	if info.Mode == "leader" {
		i("learners", info.Learners)
		i("synced_followers", info.SyncedFollowers)
		i("synced_non_voting_followers", info.SyncedNonVotingFollowers)
		i("synced_observers", info.SyncedObservers)
		i("pending_syncs", info.PendingSyncs)
		i("outstanding_proposals", info.OutstandingProposals)
	}
	return out
}
