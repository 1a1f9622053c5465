package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/rs/zerolog.(*ConsoleWriter).Write"))
}

// TestDemo runs the whole demo so it cannot rot: every step's checks must hold, and neither
// the narration nor idsync's own logs may contain a secret.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, logs bytes.Buffer
	if err := Run(ctx, Options{Out: &out, Log: &logs, StatePath: t.TempDir() + "/demo.db"}); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"== Step 1: initial sync", "== Step 2: IdP changes", "== Step 3: a SCIM push",
		"== Step 4: Customer Sync", "is a portal-only customer of DEMO: no licensed account, no group",
		"Their DEMO portal access is gone",
		"== Step 5: a mass removal", "== Step 6: suspend instead of remove-access", "== Step 7: summary",
		"Duplicate accounts or groups: 0.", "create_user", "deactivate_user              2 ok", "held", "approve",
		"jira-software-admins-legacy by hand: it goes too", "is now in no group",
		"warning: sink.jira.deactivate: suspend is account-wide", "Both are suspended and keep every group",
		"idsync deactivated the account (suspend)", "reactivate_user              1 ok", "1 suspended)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("narration lacks %q", want)
		}
	}
	if logs.Len() == 0 {
		t.Error("no logs captured; the secret check below would prove nothing")
	}
	for _, secret := range []string{jiratest.DefaultAPIToken, jiratest.DefaultOrgAPIKey, miniorangetest.DefaultAPIKey, SCIMToken, CustomersToken, AdminToken} {
		for name, b := range map[string]*bytes.Buffer{"narration": &out, "logs": &logs} {
			if strings.Contains(b.String(), secret) {
				t.Errorf("%s contains the secret %q", name, secret)
			}
		}
	}
}

// configs/demo.yaml (for `idsync sim`) names the simulator's organization, so switching it to
// deactivate: suspend needs no other edit.
func TestDemoYAMLNamesTheSimulatorsOrganization(t *testing.T) {
	cfg, err := configs.LoadAndValidate("../../configs/demo.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Sink.Jira.AdminAPI
	if a == nil || a.OrgID != jiratest.DefaultOrgID || a.OrgAPIKey.Value() != jiratest.DefaultOrgAPIKey {
		t.Fatalf("admin_api = %+v, want the simulator's org id %s and key", a, jiratest.DefaultOrgID)
	}
	cfg.Sink.Jira.Deactivate = configs.DeactivateSuspend
	if err := cfg.Validate(); err != nil {
		t.Fatalf("demo.yaml with deactivate: suspend: %v", err)
	}
}
