package server

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/zabkeeper/zabkeeper/server/admin"
)

// command is one admin command of ZooKeeper's AdminServer. Its four-letter
// word, when it has one, is answered by FourLetterCommand over the client
// port; the same ServerInfo feeds both, so the two never disagree.
type command struct {
	// names are the primary name first, then the aliases, as ZooKeeper's
	// Commands.java registers them.
	names []string
	// word is the four-letter word the command corresponds to; it also says
	// which optional parts of ServerInfo the command needs (see serverInfo).
	word string
	// anyState is true for the commands ZooKeeper answers even while the
	// server does not serve (its serverRequired=false).
	anyState bool
	// fields builds the command's keys from what the event loop collected.
	fields func(s *Server, in commandInput) []admin.Field
}

// commandInput is what the event loop collects for a command.
type commandInput struct {
	info ServerInfo
	// leader is the id of the leader being followed or led, 0 when none.
	leader int64
}

// commands is the command registry, in the order of ZooKeeper's
// Commands.registerAllCommands. Commands that change state (crst, srst,
// snapshot, restore) are left out: the admin port only reads.
var commands = []command{
	{names: []string{"configuration", "conf", "config"}, word: "conf", fields: confFields},
	{names: []string{"connections", "cons"}, word: "cons", fields: func(s *Server, in commandInput) []admin.Field {
		return []admin.Field{{Key: "connections", Value: connectionInfos(in.info, false)},
			{Key: "secure_connections", Value: []any{}}}
	}},
	{names: []string{"dirs"}, word: "dirs", fields: func(s *Server, in commandInput) []admin.Field {
		return []admin.Field{{Key: "datadir_size", Value: in.info.DataDirSize}, {Key: "logdir_size", Value: in.info.LogDirSize}}
	}},
	{names: []string{"dump"}, word: "dump", fields: dumpFields},
	{names: []string{"environment", "env", "envi"}, word: "envi", anyState: true, fields: func(s *Server, in commandInput) []admin.Field {
		out := make([]admin.Field, 0, len(in.info.Env))
		for _, kv := range in.info.Env {
			out = append(out, admin.Field{Key: kv[0], Value: kv[1]})
		}
		return out
	}},
	{names: []string{"is_read_only", "isro"}, word: "isro", fields: func(s *Server, in commandInput) []admin.Field {
		return []admin.Field{{Key: "read_only", Value: in.info.ReadOnly}}
	}},
	{names: []string{"leader", "lead"}, word: "srvr", fields: leaderFields},
	{names: []string{"monitor", "mntr"}, word: "mntr", anyState: true, fields: func(s *Server, in commandInput) []admin.Field {
		var out []admin.Field
		for _, v := range monitorValues(in.info) {
			if v.numeric {
				out = append(out, admin.Field{Key: v.key, Value: v.num})
			} else {
				out = append(out, admin.Field{Key: v.key, Value: v.text})
			}
		}
		return out
	}},
	{names: []string{"ruok"}, word: "ruok", fields: func(*Server, commandInput) []admin.Field { return nil }},
	{names: []string{"server_stats", "srvr"}, word: "srvr", fields: srvrFields},
	{names: []string{"stats", "stat"}, word: "stat", fields: func(s *Server, in commandInput) []admin.Field {
		return append(srvrFields(s, in), admin.Field{Key: "connections", Value: connectionInfos(in.info, true)},
			admin.Field{Key: "secure_connections", Value: []any{}})
	}},
	{names: []string{"voting_view"}, word: "srvr", fields: votingViewFields},
	{names: []string{"watches", "wchc"}, word: "wchc", fields: func(s *Server, in commandInput) []admin.Field {
		m := map[string][]string{}
		for sid, paths := range in.info.Watches {
			m[strconv.FormatInt(sid, 10)] = flwSortedStrings(paths)
		}
		return []admin.Field{{Key: "session_id_to_watched_paths", Value: m}}
	}},
	{names: []string{"watches_by_path", "wchp"}, word: "wchp", fields: func(s *Server, in commandInput) []admin.Field {
		m := map[string][]int64{}
		for sid, paths := range in.info.Watches {
			for _, p := range paths {
				m[p] = append(m[p], sid)
			}
		}
		for _, sids := range m {
			slices.Sort(sids)
		}
		return []admin.Field{{Key: "path_to_session_ids", Value: m}}
	}},
	{names: []string{"watch_summary", "wchs"}, word: "wchs", fields: func(s *Server, in commandInput) []admin.Field {
		return []admin.Field{{Key: "num_connections", Value: in.info.WatchingConns},
			{Key: "num_paths", Value: in.info.WatchPaths}, {Key: "num_total_watches", Value: in.info.WatchCount}}
	}},
}

// lookupCommand finds a command by any of its names.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if slices.Contains(c.names, name) {
			return c, true
		}
	}
	return command{}, false
}

// srvrFields are server_stats' keys; ServerStats is written as Jackson
// writes ZooKeeper's bean (snake_case getters).
func srvrFields(s *Server, in commandInput) []admin.Field {
	info := in.info
	out := []admin.Field{
		{Key: "version", Value: info.Version},
		{Key: "read_only", Value: info.ReadOnly},
		{Key: "server_stats", Value: map[string]any{
			"packets_sent":                 info.Sent,
			"packets_received":             info.Received,
			"max_latency":                  int64(info.MaxLatency),
			"min_latency":                  int64(info.MinLatency),
			"avg_latency":                  info.AvgLatency,
			"num_alive_client_connections": info.Connections,
			"outstanding_requests":         info.Outstanding,
			"server_state":                 info.Mode,
			"last_processed_zxid":          info.Zxid,
			"data_dir_size":                info.DataDirSize,
			"log_dir_size":                 info.LogDirSize,
			"uptime":                       info.Uptime.Milliseconds(),
			"provider_null":                false,
		}},
		{Key: "client_response", Value: map[string]int64{"last_buffer_size": info.ResponseSizes[0],
			"min_buffer_size": info.ResponseSizes[1], "max_buffer_size": info.ResponseSizes[2]}},
	}
	if info.Mode == "leader" {
		p := info.ProposalSizes
		out = append(out, admin.Field{Key: "proposal_stats",
			Value: map[string]int64{"last_buffer_size": p[0], "min_buffer_size": p[1], "max_buffer_size": p[2]}})
	}
	return append(out, admin.Field{Key: "node_count", Value: info.NodeCount})
}

// confFields are configuration's keys: conf's pairs in snake_case, numbers
// as numbers, as ZooKeeperServerConf.toMap writes them.
func confFields(s *Server, in commandInput) []admin.Field {
	var out []admin.Field
	for _, kv := range in.info.Conf {
		var v any = kv[1]
		if n, err := strconv.ParseInt(kv[1], 10, 64); err == nil {
			v = n
		}
		out = append(out, admin.Field{Key: snakeCase(kv[0]), Value: v})
	}
	return out
}

// snakeCase turns conf's camelCase keys into the admin command's keys
// ("clientPortListenBacklog" -> "client_port_listen_backlog").
func snakeCase(k string) string {
	var b strings.Builder
	for i, r := range k {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// connectionInfos are the connections as ServerCnxn.getConnectionInfo
// writes them; brief leaves out the session fields (stat's form).
func connectionInfos(info ServerInfo, brief bool) []map[string]any {
	out := make([]map[string]any, 0, len(info.Clients))
	for _, c := range info.Clients {
		m := map[string]any{
			"remote_socket_address": c.Addr,
			"interest_ops":          c.Interest,
			"outstanding_requests":  c.Queued,
			"packets_received":      c.Received,
			"packets_sent":          c.Sent,
		}
		if !brief {
			lop := c.LastOp
			if lop == "" {
				lop = "NA"
			}
			m["session_id"] = c.SessionID
			m["last_operation"] = lop
			m["established"] = flwUnixMilli(c.Established)
			m["session_timeout"] = c.Timeout
			m["last_cxid"] = c.LastCxid
			m["last_zxid"] = c.LastZxid
			m["last_response_time"] = flwUnixMilli(c.LastResponse)
			m["last_latency"] = int64(c.LastLatency)
			m["min_latency"] = int64(c.MinLatency)
			m["avg_latency"] = int64(c.AvgLatency)
			m["max_latency"] = int64(c.MaxLatency)
		}
		out = append(out, m)
	}
	return out
}

// dumpFields are dump's keys: sessions by expiry time (ms) and ephemeral
// paths by session.
func dumpFields(s *Server, in commandInput) []admin.Field {
	byExpiry := map[string][]int64{}
	for sid, t := range in.info.SessionExpiry {
		k := strconv.FormatInt(flwUnixMilli(t), 10)
		byExpiry[k] = append(byExpiry[k], sid)
	}
	for _, sids := range byExpiry {
		slices.Sort(sids)
	}
	eph := map[string][]string{}
	for sid, paths := range in.info.SessionEphemerals {
		eph[strconv.FormatInt(sid, 10)] = flwSortedStrings(paths)
	}
	return []admin.Field{{Key: "expiry_time_to_session_ids", Value: byExpiry},
		{Key: "session_id_to_ephemeral_paths", Value: eph}}
}

// leaderFields are leader's keys; a standalone server has no leader, which
// ZooKeeper reports as an error.
func leaderFields(s *Server, in commandInput) []admin.Field {
	if len(s.cfg.Servers) == 0 {
		return []admin.Field{{Key: "error", Value: "server is not initialized"}}
	}
	ip := ""
	if spec, ok := s.cfg.Servers[int(in.leader)]; ok && in.leader != 0 {
		ip = spec.Host
	}
	return []admin.Field{{Key: "is_leader", Value: in.info.Mode == "leader"},
		{Key: "leader_id", Value: in.leader}, {Key: "leader_ip", Value: ip}}
}

// votingViewFields are voting_view's keys: the voting members by id.
func votingViewFields(s *Server, in commandInput) []admin.Field {
	view := map[string]any{}
	for id, spec := range s.cfg.Servers {
		if spec.Observer {
			continue
		}
		client := ""
		if spec.ClientPort != 0 {
			host := spec.ClientAddr
			if host == "" {
				host = "0.0.0.0"
			}
			client = net.JoinHostPort(host, strconv.Itoa(spec.ClientPort))
		}
		view[strconv.Itoa(id)] = map[string]any{
			"server_addresses":   []string{net.JoinHostPort(spec.Host, strconv.Itoa(spec.QuorumPort))},
			"election_addresses": []string{net.JoinHostPort(spec.Host, strconv.Itoa(spec.ElectionPort))},
			"client_address":     client,
			"learner_type":       "participant",
		}
	}
	return []admin.Field{{Key: "current_config", Value: view}}
}

// adminSource answers the admin listener for a Server.
type adminSource struct{ s *Server }

// Commands lists the registry.
func (a adminSource) Commands() []admin.Command {
	out := make([]admin.Command, 0, len(commands))
	for _, c := range commands {
		out = append(out, admin.Command{Name: c.names[0], Aliases: slices.Clone(c.names[1:])})
	}
	return out
}

// Run collects the command's input on the event loop, as a four-letter word
// does, and builds the response on the caller's goroutine. The whitelist of
// four-letter words does not apply: the admin port is a separate opt-in.
func (a adminSource) Run(ctx context.Context, name string) (admin.Response, bool) {
	c, ok := lookupCommand(name)
	if !ok {
		return admin.Response{}, false
	}
	resp := admin.Response{Command: c.names[0]}
	reply := make(chan commandInput, 1)
	select {
	case a.s.events <- event{kind: evAdmin, word: c.word, admin: reply}:
	case <-a.s.done:
		resp.Error = "This ZooKeeper instance is shutting down"
		return resp, true
	case <-ctx.Done():
		resp.Error = "the server's event loop did not take the command in time"
		return resp, true
	}
	var in commandInput
	select {
	case in = <-reply:
	case <-a.s.done:
		resp.Error = "This ZooKeeper instance is shutting down"
		return resp, true
	case <-ctx.Done():
		resp.Error = "the server's event loop did not answer in time"
		return resp, true
	}
	if in.info.NotServing && !c.anyState {
		resp.Error = flwNotServing
		return resp, true
	}
	for _, f := range c.fields(a.s, in) {
		if f.Key == "error" {
			resp.Error, _ = f.Value.(string)
			continue
		}
		resp.Fields = append(resp.Fields, f)
	}
	return resp, true
}

// Live and Ready answer the probes from what the loop published.
func (a adminSource) Live() (bool, string)  { return a.s.live() }
func (a adminSource) Ready() (bool, string) { return a.s.ready() }
