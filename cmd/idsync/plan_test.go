package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/reconcile"
)

// A plan table lists planRows rows per kind and says where the rest is when it cut some.
func TestPlanSaysWhenRowsWereCut(t *testing.T) {
	for _, n := range []int{planRows, planRows + 1} {
		c := reconcile.Changes{CreateUsers: make([]reconcile.Change, n)}
		for i := range c.CreateUsers {
			c.CreateUsers[i] = reconcile.Change{Kind: reconcile.KindCreateUser, UserName: fmt.Sprintf("user%03d", i), Reason: "new"}
		}
		var out bytes.Buffer
		cmd := &cobra.Command{}
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		printPass(cmd, reconcile.Run{ID: "r-1", DryRun: true, Result: reconcile.ResultOK, Changes: &c}, passFlags{output: "table"}, true)
		hint := strings.Contains(out.String(), "idsync plan -o json lists every item")
		if hint != (n > planRows) {
			t.Errorf("%d rows: hint shown %v\n%s", n, hint, out.String())
		}
		if n > planRows && !strings.Contains(out.String(), "... 1 more") {
			t.Errorf("%d rows: the table does not count the rest", n)
		}
	}
}
