package engine

import "github.com/zabkeeper/zabkeeper/engine/tree"

// TakeQuotaWarnings returns and forgets the quota excesses noticed while
// preparing writes (only a leader prepares), for the caller to log
// (engine/tree/quota.go).
func (n *Node) TakeQuotaWarnings() []tree.QuotaWarning {
	return n.tree.TakeQuotaWarnings()
}
