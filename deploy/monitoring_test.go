// Package deploy_test checks what an operator installs next to the server:
// the Prometheus rules (promtool check and unit tests), a real Prometheus
// scraping a real server, and the Grafana dashboard's JSON and queries.
// The tools come from Debian's prometheus package; a test skips, saying
// so, where they are absent, and fails instead when
// LDKBACKUP_REQUIRE_PROMETHEUS is set (.ci/run sets it).
package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"ldkbackup/internal/app"
	"ldkbackup/internal/backup"
	"ldkbackup/internal/client"
	"ldkbackup/internal/config"
	"ldkbackup/internal/pgtest"
	"ldkbackup/internal/postgres"
	"ldkbackup/internal/tenant"
)

const (
	rulesFile     = "prometheus/ldkbackup.rules.yml"
	rulesTestFile = "prometheus/ldkbackup.rules.test.yml"
	promConfig    = "prometheus/prometheus.yml"
	dashboardFile = "grafana/dashboards/ldkbackup.json"
)

// tool is the path of a binary of Debian's prometheus package, or skips.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("LDKBACKUP_REQUIRE_PROMETHEUS") != "" {
		t.Fatalf("%s not found and LDKBACKUP_REQUIRE_PROMETHEUS is set: install Debian's prometheus package (apt-get install prometheus)", name)
	}
	t.Skipf("SKIPPED: %s not found; install Debian's prometheus package (apt-get install prometheus) to run this test (CI does)", name)
	return ""
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// TestRules: the rules load, and each alert fires on the series of its
// unit test that should fire it and on no other.
func TestRules(t *testing.T) {
	t.Parallel()
	promtool := tool(t, "promtool")
	run(t, promtool, "check", "rules", rulesFile)
	run(t, promtool, "test", "rules", rulesTestFile)
	run(t, promtool, "check", "config", promConfig)
}

// TestEveryAlertHasARunbookAndATest: each alert names a severity, a summary
// and its runbook entry in docs/operations.md, which exists; and the unit
// tests expect it to fire somewhere.
func TestEveryAlertHasARunbookAndATest(t *testing.T) {
	t.Parallel()
	rules := ruleGroups(t)
	runbook, err := os.ReadFile("../docs/operations.md")
	require.NoError(t, err)
	tests, err := os.ReadFile(rulesTestFile)
	require.NoError(t, err)
	alerts := 0
	for _, g := range rules {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], r.Alert)
			require.Equal(t, "docs/operations.md#"+strings.ToLower(r.Alert), r.Annotations["runbook"], r.Alert)
			require.Regexp(t, "(?m)^### "+r.Alert+"$", string(runbook), "docs/operations.md has no runbook entry for %s", r.Alert)
			require.Regexp(t, "(?s)- alertname: "+r.Alert+"\n\\s+eval_time: [^\n]+\n\\s+exp_alerts:\n\\s+- exp_labels", string(tests),
				"%s has no unit test that fires it", r.Alert)
		}
	}
	require.GreaterOrEqual(t, alerts, 10)
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleGroup struct {
	Name  string `yaml:"name"`
	Rules []rule `yaml:"rules"`
}

// ruleGroups reads the rules file (TestRules has promtool check it).
func ruleGroups(t *testing.T) []ruleGroup {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	var file struct {
		Groups []ruleGroup `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(b, &file))
	require.NotEmpty(t, file.Groups)
	return file.Groups
}

// metricNames are the ldkbackup_ series the server exports that the
// expressions read (recorded series, with a colon, are left out).
func metricNames(exprs ...string) []string {
	re := regexp.MustCompile(`[a-z0-9_:]*ldkbackup_[a-z0-9_:]*`)
	var names []string
	for _, e := range exprs {
		for _, name := range re.FindAllString(e, -1) {
			if !strings.Contains(name, ":") {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// TestPrometheusScrapesTheServer starts Debian's real prometheus against a
// running server's admin listener, sends real traffic, and checks through
// Prometheus' query API that every series the rules and the dashboard read
// exists, that every rule evaluates without error, and that the recording
// rules the alerts use have data.
func TestPrometheusScrapesTheServer(t *testing.T) {
	t.Parallel()
	prometheus := tool(t, "prometheus")
	srv := startServer(t)
	prom := startPrometheus(t, prometheus, srv.admin)

	prom.waitFor(t, "Prometheus to scrape the server", `up{job="ldkbackup"} == 1`)
	// Traffic in two rounds: a rate needs a counter that Prometheus saw
	// before it moved. Persists for two tenants, then more, one refused
	// over quota, and a failed signature.
	persist := func(label string, refused bool) {
		for _, w := range srv.wallets {
			_, err := w.Persist(context.Background(), label, "", []byte("state of "+label))
			if refused {
				require.Error(t, err, "QUOTA_OBJECTS is 2")
			} else {
				require.NoError(t, err)
			}
		}
	}
	persist("channel_manager", false)
	prom.waitFor(t, "Prometheus to see the first persists", `ldkbackup_http_requests_total{route="/persist",status="200",tenant="acme"}`)
	persist("channel_manager", false)
	persist("ping", false)
	persist("addresses", true)
	srv.badSignature(t)

	prom.waitFor(t, "the persists in a rate", `sum(rate(ldkbackup_http_requests_total{route="/persist",status="200"}[5m])) > 0`)
	prom.waitFor(t, "the recording rules to see them", `tenant:ldkbackup_persists:rate5m{tenant="acme",protocol="v1"} > 0`)
	prom.waitFor(t, "the quota refusal in a rate", `tenant_kind:ldkbackup_refusals:rate5m{tenant="acme",kind="refused_quota"} > 0`)

	groups := ruleGroups(t)
	var exprs []string
	for _, g := range groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	dash := dashboardExprs(t)
	names := metricNames(append(exprs, dash...)...)
	t.Logf("series the rules and the dashboard read: %s", strings.Join(names, " "))
	for _, name := range names {
		require.NotEmpty(t, prom.query(t, fmt.Sprintf(`%s{job="ldkbackup"}`, name)), "the server exports no %s", name)
	}

	// Every rule has been evaluated, without an error, against real data.
	prom.waitForRules(t, len(exprs))

	// The recording rules the alerts read have series, but for the 5xx
	// ones: this traffic had no server error.
	noData := map[string]bool{"tenant:ldkbackup_persist_errors:rate5m": true, "tenant:ldkbackup_persist_error_ratio:rate5m": true}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Record == "" || noData[r.Record] {
				continue
			}
			require.NotEmpty(t, prom.query(t, r.Record), "recording rule %s has no series", r.Record)
		}
	}
	// Tenants are told apart, and the database size is known.
	require.NotEmpty(t, prom.query(t, `tenant:ldkbackup_persists:rate5m{tenant="default"} > 0`))
	require.NotEmpty(t, prom.query(t, `ldkbackup_db_size_bytes > 0`))
	require.NotEmpty(t, prom.query(t, `ldkbackup_ready == 1`))
	require.Empty(t, prom.query(t, `ALERTS{alertname="LdkbackupNotReady"}`))

	// Every dashboard query runs on this Prometheus.
	for _, e := range dash {
		prom.query(t, e)
	}
}

// server is a real server on :0 with an admin listener, a named tenant
// besides the default one, and a wallet of each.
type server struct {
	url, admin string
	wallets    []*client.Client
}

func startServer(t *testing.T) *server {
	t.Helper()
	pool, dbURL := pgtest.NewPool(t)
	secret, public, err := config.GenerateKeyPair()
	require.NoError(t, err)
	kek := make([]byte, 32)
	_, err = rand.Read(kek)
	require.NoError(t, err)

	cfg := config.Default()
	cfg.Host, cfg.Port = "127.0.0.1", 0
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.DatabaseURL = dbURL
	cfg.SecretKey, cfg.PublicKey = secret, public
	cfg.KeyEncryptionKey = hex.EncodeToString(kek)
	cfg.QuotaObjects = 2
	// A formation whose monitor does not answer (nothing listens on port
	// 1): the formation's series exist, as on a pg_auto_failover deployment.
	cfg.MonitorURL = "postgres://autoctl_node@127.0.0.1:1/pg_auto_failover?connect_timeout=1"
	cfg.ShutdownTimeout = 5 * time.Second

	a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), backup.SystemClock{})
	require.NoError(t, err)
	require.NoError(t, a.Start())
	t.Cleanup(func() { _ = a.Close() })

	key, err := cfg.KEK()
	require.NoError(t, err)
	acme, err := tenant.NewDirectory(postgres.NewStore(pool), tenant.Config{KEK: key}, time.Now).Create(context.Background(), "acme", "Acme")
	require.NoError(t, err)

	s := &server{url: a.URL(), admin: a.AdminAddr()}
	for _, target := range []struct{ base, pub string }{
		{s.url, public},
		{s.url + "/t/acme", hex.EncodeToString(acme.PublicKey)},
	} {
		node, err := btcec.NewPrivateKey()
		require.NoError(t, err)
		w, err := client.New(client.Config{BaseURL: target.base, Network: "regtest", NodeSecret: node.Serialize(), ServerPubKey: target.pub})
		require.NoError(t, err)
		s.wallets = append(s.wallets, w)
	}
	return s
}

// badSignature sends a persist to acme whose signature is over other bytes:
// 401, a signature failure.
func (s *server) badSignature(t *testing.T) {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	pub := hex.EncodeToString(key.PubKey().SerializeCompressed())
	headers := client.PersistHeaders(key, sha256.Sum256([]byte("signed")), client.PersistChallenge(pub, client.AndroidTimestamps, time.Now()))
	req, err := http.NewRequest(http.MethodPost, s.url+"/t/acme/v1/persist?network=regtest&label=ping", strings.NewReader("sent"))
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// prom is a Prometheus of the test's own: a free port, storage in a
// temporary directory, scraping every second.
type prom struct{ base string }

func startPrometheus(t *testing.T, binary, target string) *prom {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(rulesFile)
	require.NoError(t, err)
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: ldkbackup
    static_configs:
      - targets: [%q]
`, rules, target)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	var logs bytes.Buffer
	cmd := exec.Command(binary,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--web.console.templates="+dir, "--web.console.libraries="+dir)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus logs:\n%s", logs.String())
		}
	})
	p := &prom{base: "http://" + addr}
	poll(t, "prometheus to become ready", func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("prometheus exited: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// query runs an instant query and returns its vector; a query Prometheus
// refuses fails the test.
func (p *prom) query(t *testing.T, q string) []sample {
	t.Helper()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	p.get(t, "/api/v1/query?query="+url.QueryEscape(q), &body)
	require.Equal(t, "success", body.Status, "query %s: %s", q, body.Error)
	if body.Data.ResultType != "vector" {
		return nil
	}
	var out []sample
	require.NoError(t, json.Unmarshal(body.Data.Result, &out))
	return out
}

func (p *prom) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(p.base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// waitFor polls until q has a result.
func (p *prom) waitFor(t *testing.T, what, q string) {
	t.Helper()
	poll(t, what+": "+q, func() bool { return len(p.query(t, q)) > 0 })
}

// poll calls cond until it holds. The minute bounds a failure only, never
// a budget a passing run comes near.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		case <-tick.C:
		}
	}
}

// waitForRules polls until all n rules have been evaluated, and requires
// every evaluation to have succeeded.
func (p *prom) waitForRules(t *testing.T, n int) {
	t.Helper()
	type state struct {
		Name, Health, LastError string
		LastEvaluation          time.Time
	}
	var rules []state
	poll(t, "every rule to be evaluated", func() bool {
		var body struct {
			Data struct {
				Groups []struct {
					Rules []state `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		p.get(t, "/api/v1/rules", &body)
		rules = rules[:0]
		for _, g := range body.Data.Groups {
			rules = append(rules, g.Rules...)
		}
		if len(rules) != n {
			return false
		}
		for _, r := range rules {
			if r.LastEvaluation.IsZero() || r.LastEvaluation.Year() < 2000 {
				return false
			}
		}
		return true
	})
	for _, r := range rules {
		require.Equal(t, "ok", r.Health, "rule %s: %s", r.Name, r.LastError)
	}
}
