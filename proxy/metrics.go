package proxy

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	clients       prometheus.Gauge
	logins        *prometheus.CounterVec
	cancels       prometheus.Counter
	serverFailure prometheus.Counter
	requests      prometheus.Counter
	pinned        *prometheus.CounterVec
	readsRerouted prometheus.Counter
	seqRefused    prometheus.Counter
	// beginsDeferred counts lone BEGINs answered by the proxy (deferbegin.go).
	beginsDeferred prometheus.Counter
	// slowQueries counts calls over query_stats.slow_threshold.
	slowQueries *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgninja_clients_connected", Help: "Clients logged in now."}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgninja_client_logins_total", Help: "Client login attempts by result."}, []string{"result"}),
		cancels: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgninja_cancel_requests_total", Help: "CancelRequests received."}),
		serverFailure: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgninja_server_connection_failures_total", Help: "Server connections lost while leased."}),
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgninja_requests_total", Help: "Client requests forwarded (one per Query, Sync or Flush)."}),
		pinned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgninja_sessions_pinned_total",
			Help: "Transaction-mode clients pinned to one server connection, by the feature that pinned them."}, []string{"feature"}),
		readsRerouted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgninja_reads_rerouted_total",
			Help: "Reads run again on the primary because their server connection died before answering."}),
		seqRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgninja_sequence_reads_refused_total",
			Help: "currval/lastval refused (55000) because the client's sequence values were on another server connection."}),
		beginsDeferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgninja_begins_deferred_total",
			Help: "Lone BEGINs answered by the proxy and sent in front of the client's next request."}),
		slowQueries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgninja_slow_queries_total",
			Help: "Requests that took longer than query_stats.slow_threshold, by client database (query_stats on)."}, []string{"database"}),
	}
	if reg != nil {
		reg.MustRegister(m.clients, m.logins, m.cancels, m.serverFailure, m.requests, m.pinned, m.readsRerouted, m.seqRefused, m.beginsDeferred,
			m.slowQueries)
	}
	return m
}
