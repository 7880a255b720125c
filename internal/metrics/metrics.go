// Package metrics exposes the server's Prometheus metrics on the admin
// listener: requests, latency, bytes, signature failures, refusals and the
// database pool.
package metrics

import (
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

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
}

// New registers the collectors, the Go runtime's and the pool's.
func New(pool *pgxpool.Pool) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldkbackup_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ldkbackup_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldkbackup_http_request_bytes_total", Help: "Request body bytes by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldkbackup_http_response_bytes_total", Help: "Response body bytes by route.",
		}, []string{"route"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ldkbackup_events_total", Help: "Logins, reads, signature failures and refusals by kind (as in reporting.daily).",
		}, []string{"kind"}),
		paced: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ldkbackup_paced_wait_seconds",
			Help:    "How long proven persists over their node's allowance waited for their turn (count: paced persists).",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 15, 20, 30, 60},
		}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ldkbackup_usage_drift_nodes",
			Help: "Nodes and VSS users whose recorded usage differed from what is stored at the last usage check.",
		}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.events, m.paced, m.drift,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		poolCollector{pool})
	return m
}

// Request records one finished request. route is the route pattern, never
// the raw path, so labels stay few.
func (m *Metrics) Request(route string, status int, d time.Duration, in, out int64) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, statusText(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
	if in > 0 {
		m.bytesIn.WithLabelValues(route).Add(float64(in))
	}
	if out > 0 {
		m.bytesOut.WithLabelValues(route).Add(float64(out))
	}
}

// Event counts one event of kind.
func (m *Metrics) Event(kind string) { m.events.WithLabelValues(kind).Inc() }

// Paced records a persist that waited d for its turn.
func (m *Metrics) Paced(d time.Duration) { m.paced.Observe(d.Seconds()) }

// UsageDrift records how many nodes and VSS users the last usage check found
// drifted.
func (m *Metrics) UsageDrift(nodes int) { m.drift.Set(float64(nodes)) }

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
