// Package metrics exposes the server's Prometheus metrics on the admin
// listener: requests, latency and bytes by protocol, tenant and route;
// events and refusals by kind; pacing; readiness, database size and
// replication; the database pool. deploy/prometheus holds the rules that
// read them.
package metrics

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// None is the protocol or tenant label of a request that has none: a health
// check, an unknown path, a tenant slug that resolved to no tenant (the raw
// slug is never a label, so a prober cannot grow the label set).
const None = "none"

// Probes are what the metrics ask the rest of the server.
type Probes struct {
	// Ready says whether this replica can serve (/readyz).
	Ready func(ctx context.Context) error
	// DatabaseSize is the database's size and each table's (with its
	// indexes and TOAST) in bytes.
	DatabaseSize func(ctx context.Context) (total int64, tables map[string]int64, err error)
	// EventKinds are the kinds of ldkbackup_events_total each tenant's
	// series start with at zero, so rate() sees a tenant's first refusal.
	EventKinds []string
	// ProbeTimeout bounds each of the scrape's database questions.
	ProbeTimeout time.Duration
}

// Metrics holds the collectors of one server process.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	events   *prometheus.CounterVec
	paced    prometheus.Histogram
	drift    prometheus.Gauge

	replicationRead prometheus.Gauge
	standbys        prometheus.Gauge
	syncStandbys    prometheus.Gauge
	synchronous     prometheus.Gauge
	formation       *prometheus.GaugeVec

	eventKinds []string
	seenMu     sync.Mutex
	seen       map[[2]string]bool // tenant, protocol pairs whose events start at zero
}

// New registers the collectors, the Go runtime's, the pool's and the
// scrape-time probes'.
func New(pool *pgxpool.Pool, probes Probes) *Metrics {
	requestLabels := []string{"protocol", "tenant", "route"}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldkbackup_http_requests_total",
			Help: "HTTP requests by protocol (v1, vss), tenant slug, route within the protocol, and status.",
		}, append(requestLabels, "status")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ldkbackup_http_request_duration_seconds",
			Help:    "HTTP request latency by protocol, tenant and route, without the wait of a paced persist (ldkbackup_paced_wait_seconds).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, requestLabels),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldkbackup_http_request_bytes_total", Help: "Request body bytes by protocol, tenant and route.",
		}, requestLabels),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldkbackup_http_response_bytes_total", Help: "Response body bytes by protocol, tenant and route.",
		}, requestLabels),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldkbackup_events_total",
			Help: "Logins, reads, persists, paced persists, signature failures and refusals by protocol, tenant and kind (as in reporting.daily).",
		}, []string{"protocol", "tenant", "kind"}),
		paced: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ldkbackup_paced_wait_seconds",
			Help:    "How long proven persists over their node's allowance waited for their turn (count: paced persists).",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 15, 20, 30, 60},
		}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ldkbackup_usage_drift_nodes",
			Help: "Nodes and VSS users whose recorded usage differed from what is stored at the last usage check.",
		}),
		replicationRead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ldkbackup_db_replication_read",
			Help: "1 when the last replication check (every minute) could read the primary's replication state, else 0.",
		}),
		standbys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ldkbackup_db_standbys", Help: "Standbys streaming from the primary at the last replication check.",
		}),
		syncStandbys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ldkbackup_db_sync_standbys",
			Help: "Standbys a commit waits for at the last replication check; -1 when the role may not read it (grant pg_monitor).",
		}),
		synchronous: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ldkbackup_db_synchronous",
			Help: "1 when an acknowledged write is on a synchronous standby too (last replication check), else 0.",
		}),
		formation: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ldkbackup_db_formation",
			Help: "With MONITOR_URL, the pg_auto_failover formation at the last replication check: monitor_up (1 or 0), nodes, unhealthy_nodes.",
		}, []string{"state"}),
		eventKinds: probes.EventKinds,
		seen:       map[[2]string]bool{},
	}
	m.replicationRead.Set(1) // until a check says otherwise
	m.registry.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.events, m.paced, m.drift,
		m.replicationRead, m.standbys, m.syncStandbys, m.synchronous, m.formation,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		poolCollector{pool}, probeCollector{probes})
	return m
}

// SplitRoute splits a route pattern into the protocol and the route within
// it: "/t/:tenant/v1/persist" and "/v1/persist" are ("v1", "/persist"),
// "/t/:tenant/vss/putObjects" is ("vss", "/putObjects"); a route outside
// every protocol ("/healthz") has protocol None, and "" (no route matched)
// is (None, "unmatched").
func SplitRoute(pattern string) (protocol, route string) {
	if pattern == "" {
		return None, "unmatched"
	}
	rest := strings.TrimPrefix(pattern, "/t/:tenant")
	first, tail, found := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	if !found {
		return None, rest
	}
	return first, "/" + tail
}

func tenantLabel(slug string) string {
	if slug == "" {
		return None
	}
	return slug
}

// Request records one finished request of tenant (its slug; "" when none
// was resolved) on the route pattern, never the raw path, so labels stay
// few. d excludes a paced persist's wait.
func (m *Metrics) Request(tenant, pattern string, status int, d time.Duration, in, out int64) {
	protocol, route := SplitRoute(pattern)
	tenant = tenantLabel(tenant)
	m.requests.WithLabelValues(protocol, tenant, route, statusText(status)).Inc()
	m.duration.WithLabelValues(protocol, tenant, route).Observe(d.Seconds())
	if in > 0 {
		m.bytesIn.WithLabelValues(protocol, tenant, route).Add(float64(in))
	}
	if out > 0 {
		m.bytesOut.WithLabelValues(protocol, tenant, route).Add(float64(out))
	}
}

// Event counts one event of kind for tenant (its slug) on the route pattern.
// A tenant's first event on a protocol starts every kind's series at zero.
func (m *Metrics) Event(tenant, pattern, kind string) {
	protocol, _ := SplitRoute(pattern)
	tenant = tenantLabel(tenant)
	m.seenMu.Lock()
	if key := [2]string{tenant, protocol}; !m.seen[key] {
		m.seen[key] = true
		for _, k := range m.eventKinds {
			m.events.WithLabelValues(protocol, tenant, k)
		}
	}
	m.seenMu.Unlock()
	m.events.WithLabelValues(protocol, tenant, kind).Inc()
}

// Paced records a persist that waited d for its turn.
func (m *Metrics) Paced(d time.Duration) { m.paced.Observe(d.Seconds()) }

// UsageDrift records how many nodes and VSS users the last usage check found
// drifted.
func (m *Metrics) UsageDrift(nodes int) { m.drift.Set(float64(nodes)) }

// Replication records the primary's replication at a check: ok is false
// when it could not be read (the rest is then left as it was).
func (m *Metrics) Replication(ok bool, standbys, syncStandbys int, synchronous bool) {
	if !ok {
		m.replicationRead.Set(0)
		return
	}
	m.replicationRead.Set(1)
	m.standbys.Set(float64(standbys))
	m.syncStandbys.Set(float64(syncStandbys))
	m.synchronous.Set(boolValue(synchronous))
}

// Formation records what the pg_auto_failover monitor said at a check;
// monitorUp is false when it did not answer (the node counts are then left
// as they were).
func (m *Metrics) Formation(monitorUp bool, nodes, unhealthy int) {
	m.formation.WithLabelValues("monitor_up").Set(boolValue(monitorUp))
	if monitorUp {
		m.formation.WithLabelValues("nodes").Set(float64(nodes))
		m.formation.WithLabelValues("unhealthy_nodes").Set(float64(unhealthy))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

func statusText(s int) string {
	const digits = "0123456789"
	if s < 100 || s > 999 {
		return "other"
	}
	return string([]byte{digits[s/100], digits[s/10%10], digits[s%10]})
}

// poolCollector reports pgxpool statistics at scrape time.
type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolConns    = prometheus.NewDesc("ldkbackup_db_pool_connections", "Pool connections by state.", []string{"state"}, nil)
	poolMax      = prometheus.NewDesc("ldkbackup_db_pool_max_connections", "Pool size limit.", nil, nil)
	poolAcquires = prometheus.NewDesc("ldkbackup_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil)
	poolWaits    = prometheus.NewDesc("ldkbackup_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", nil, nil)
	poolWaitTime = prometheus.NewDesc("ldkbackup_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolMax, poolAcquires, poolWaits, poolWaitTime} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitTime, prometheus.CounterValue, s.AcquireDuration().Seconds())
}

// probeCollector asks the database at scrape time, within ProbeTimeout:
// whether this replica is ready, and how big the database is. Both are
// cheap (one catalog query each), and a scrape every 15 to 60 s adds
// nothing a busy server would notice.
type probeCollector struct{ p Probes }

var (
	readyDesc      = prometheus.NewDesc("ldkbackup_ready", "1 when this replica can serve (as /readyz: the database answers, is a writable primary, and its schema is current), else 0.", nil, nil)
	dbSizeDesc     = prometheus.NewDesc("ldkbackup_db_size_bytes", "Size of the database on disk.", nil, nil)
	tableSizeDesc  = prometheus.NewDesc("ldkbackup_db_table_bytes", "Size of each table of the server's schema with its indexes and TOAST.", []string{"table"}, nil)
	probeErrorDesc = prometheus.NewDesc("ldkbackup_db_size_probe_errors", "1 when the scrape could not read the database size (ldkbackup_db_size_bytes is then missing), else 0.", nil, nil)
)

func (c probeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{readyDesc, dbSizeDesc, tableSizeDesc, probeErrorDesc} {
		ch <- d
	}
}

func (c probeCollector) Collect(ch chan<- prometheus.Metric) {
	timeout := c.p.ProbeTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if c.p.Ready != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		ready := c.p.Ready(ctx) == nil
		cancel()
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, boolValue(ready))
	}
	if c.p.DatabaseSize != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		total, tables, err := c.p.DatabaseSize(ctx)
		cancel()
		ch <- prometheus.MustNewConstMetric(probeErrorDesc, prometheus.GaugeValue, boolValue(err != nil))
		if err != nil {
			return
		}
		ch <- prometheus.MustNewConstMetric(dbSizeDesc, prometheus.GaugeValue, float64(total))
		for name, bytes := range tables {
			ch <- prometheus.MustNewConstMetric(tableSizeDesc, prometheus.GaugeValue, float64(bytes), name)
		}
	}
}
