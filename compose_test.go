// Package sweeper_test checks the repository's deployment files. No Docker engine
// runs where the tests run, so the compose file is checked by loading it with the
// real Compose-spec implementation (compose-go, what `docker compose` itself uses).
package sweeper_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/sweeperhq/sweeper/internal/config"
)

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"}, cli.WithOsEnv, cli.WithName("sweeper"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

func TestComposeWiring(t *testing.T) {
	p := loadCompose(t)
	svc := func(name string) types.ServiceConfig {
		t.Helper()
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		return s
	}
	env := func(s types.ServiceConfig, k string) string {
		t.Helper()
		v, ok := s.Environment[k]
		if !ok || v == nil {
			t.Fatalf("%s: %s not set", s.Name, k)
		}
		return *v
	}

	pg := svc("postgres")
	if pg.HealthCheck == nil || len(pg.HealthCheck.Test) == 0 || !strings.Contains(strings.Join(pg.HealthCheck.Test, " "), "pg_isready") {
		t.Fatalf("postgres has no pg_isready healthcheck: %+v", pg.HealthCheck)
	}

	known := map[string]bool{}
	for _, v := range append(append([]config.Var{}, config.Vars...), config.SandboxVars...) {
		known[v.Name] = true
	}
	for _, name := range []string{"migrate", "sandbox", "sweeper"} {
		s := svc(name)
		if s.Build == nil || s.Build.Context == "" {
			t.Fatalf("%s is not built from this repository", name)
		}
		for k := range s.Environment {
			if !known[k] && !known[strings.TrimSuffix(k, "_FILE")] {
				t.Errorf("%s: %s is not a documented variable", name, k)
			}
		}
	}

	mig := svc("migrate")
	if strings.Join(mig.Command, " ") != "migrate" || mig.DependsOn["postgres"].Condition != types.ServiceConditionHealthy {
		t.Fatalf("migrate: command %v depends %v", mig.Command, mig.DependsOn)
	}

	sw := svc("sweeper")
	if strings.Join(sw.Command, " ") != "serve" {
		t.Fatalf("sweeper command %v", sw.Command)
	}
	if sw.DependsOn["migrate"].Condition != types.ServiceConditionCompletedSuccessfully ||
		sw.DependsOn["postgres"].Condition != types.ServiceConditionHealthy {
		t.Fatalf("sweeper must wait for a healthy database and a finished migration: %v", sw.DependsOn)
	}
	for _, k := range []string{"DATABASE_URL", "INTERLACE_ACCOUNT_ID", "INTERLACE_BASE_URL", "INTERLACE_WEBHOOK_SECRET"} {
		env(sw, k)
	}
	if env(mig, "DATABASE_URL") != env(sw, "DATABASE_URL") {
		t.Fatal("migrate and sweeper use different databases")
	}
	db, err := url.Parse(env(sw, "DATABASE_URL"))
	if err != nil || db.Hostname() != "postgres" {
		t.Fatalf("DATABASE_URL %q does not point at the postgres service", env(sw, "DATABASE_URL"))
	}

	sb := svc("sandbox")
	if strings.Join(sb.Command, " ") != "sandbox" {
		t.Fatalf("sandbox command %v", sb.Command)
	}
	base, err := url.Parse(env(sw, "INTERLACE_BASE_URL"))
	if err != nil || base.Hostname() != "sandbox" || !strings.HasSuffix(env(sb, "SWEEPER_SANDBOX_ADDR"), ":"+base.Port()) {
		t.Fatalf("INTERLACE_BASE_URL %q does not reach the sandbox on %q", env(sw, "INTERLACE_BASE_URL"), env(sb, "SWEEPER_SANDBOX_ADDR"))
	}
	hook, err := url.Parse(env(sb, "SANDBOX_WEBHOOK_URL"))
	if err != nil || hook.Hostname() != "sweeper" || hook.Path != "/webhooks/interlace" ||
		!strings.HasSuffix(env(sw, "SWEEPER_HTTP_ADDR"), ":"+hook.Port()) {
		t.Fatalf("SANDBOX_WEBHOOK_URL %q does not reach sweeper on %q", env(sb, "SANDBOX_WEBHOOK_URL"), env(sw, "SWEEPER_HTTP_ADDR"))
	}
	if env(sb, "SANDBOX_WEBHOOK_SECRET") != env(sw, "INTERLACE_WEBHOOK_SECRET") {
		t.Fatal("the sandbox signs with a different secret than sweeper verifies")
	}

	published := func(s types.ServiceConfig, port uint32) bool {
		for _, p := range s.Ports {
			if p.Target == port && p.Published != "" {
				return true
			}
		}
		return false
	}
	if !published(sw, 8080) || !published(sb, 8090) {
		t.Fatal("the quick start needs sweeper on 8080 and the sandbox on 8090 published")
	}
}
