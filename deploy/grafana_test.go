package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

// dashboardExprs are the dashboard's queries, its variables filled in as
// Grafana does with every value selected.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	grafanaVariables := strings.NewReplacer("$__rate_interval", "5m", "$tenant", ".*", "$protocol", ".*")
	var out []string
	for _, p := range readDashboard(t).Panels {
		for _, target := range p.Targets {
			out = append(out, grafanaVariables.Replace(target.Expr))
		}
	}
	return out
}

// TestGrafanaDashboard checks what can be checked of the dashboard without
// a Grafana: its JSON, its layout, that every panel queries the Prometheus
// data source variable and uses only the variables it defines, and (with
// promtool) that every query parses as PromQL.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	d := readDashboard(t)
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Title)
	defined := map[string]bool{"__rate_interval": true}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
	}
	require.True(t, defined["datasource"] && defined["tenant"] && defined["protocol"], "variables: %v", defined)

	ids := map[int]bool{}
	variable := regexp.MustCompile(`\$\{?(\w+)`)
	queries := 0
	for _, p := range d.Panels {
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		require.NotEmpty(t, p.Title, "panel %d", p.ID)
		require.True(t, p.GridPos.W > 0 && p.GridPos.X+p.GridPos.W <= 24 && p.GridPos.H > 0, "panel %q: gridPos %+v", p.Title, p.GridPos)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, "panel %q has no data source", p.Title)
		require.Equal(t, "prometheus", p.Datasource.Type, p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, target := range p.Targets {
			require.NotEmpty(t, target.Expr, "panel %q", p.Title)
			for _, m := range variable.FindAllStringSubmatch(target.Expr, -1) {
				require.True(t, defined[m[1]], "panel %q uses undefined variable $%s", p.Title, m[1])
			}
			queries++
		}
	}
	require.GreaterOrEqual(t, queries, 15)
	// The operator's first questions each have a panel.
	var titles []string
	for _, p := range d.Panels {
		titles = append(titles, strings.ToLower(p.Title))
	}
	for _, want := range []string{"requests by protocol and tenant", "server errors", "latency", "refusals by tenant and kind", "pool connections", "database growth"} {
		require.True(t, strings.Contains(strings.Join(titles, "\n"), want), "no panel about %q", want)
	}

	// promtool parses every query, as the expression of a recording rule.
	promtool := tool(t, "promtool")
	type record struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var records []record
	for i, e := range dashboardExprs(t) {
		records = append(records, record{fmt.Sprintf("dashboard:query_%d", i), e})
	}
	file := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": records}}}
	b, err := json.Marshal(file) // JSON is YAML
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	run(t, promtool, "check", "rules", path)
}

// TestComposeMonitoringProfile: the compose file's monitoring profile
// mounts files that exist and starts Prometheus on the configuration
// tested above. No container engine runs here to start it.
func TestComposeMonitoringProfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Profiles []string `yaml:"profiles"`
			Command  []string `yaml:"command"`
			Volumes  []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(b, &compose))
	mounts := map[string]string{} // container path: host path
	for _, name := range []string{"prometheus", "grafana"} {
		s, ok := compose.Services[name]
		require.True(t, ok, "no %s service", name)
		require.Equal(t, []string{"monitoring"}, s.Profiles, name)
		for _, v := range s.Volumes {
			host, container, _ := strings.Cut(v, ":")
			container, _, _ = strings.Cut(container, ":")
			if strings.HasPrefix(host, "./") {
				_, err := os.Stat(filepath.Join("..", host))
				require.NoError(t, err, "%s mounts %s", name, host)
				mounts[container] = filepath.Join("..", host)
			}
		}
	}
	for _, server := range []string{"postgres", "server"} {
		require.Empty(t, compose.Services[server].Profiles, "%s runs without a profile", server)
	}
	var config string
	for _, arg := range compose.Services["prometheus"].Command {
		if c, ok := strings.CutPrefix(arg, "--config.file="); ok {
			config = c
		}
	}
	dir, file := filepath.Split(config)
	require.Equal(t, filepath.Clean(promConfig), filepath.Clean(filepath.Join(strings.TrimPrefix(mounts[filepath.Clean(dir)], "../deploy/"), file)))
	_, err = os.Stat(filepath.Join(mounts["/var/lib/grafana/dashboards"], filepath.Base(dashboardFile)))
	require.NoError(t, err, "grafana's dashboards directory holds the dashboard")
}
