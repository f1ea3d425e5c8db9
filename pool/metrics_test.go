package pool

import (
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCollectorReportsEachPool(t *testing.T) {
	var n atomic.Int32
	m := NewManager(fakeDial(&n, nil))
	p := m.Get(Key{Backend: "primary", Database: "db", User: "u"}, Target{}, opts(3))
	a, b := mustAcquire(t, p), mustAcquire(t, p)
	p.Release(b, false)
	defer p.Release(a, false)

	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range mt.GetLabel() {
				if l.GetName() == "state" {
					key += "/" + l.GetValue()
				} else if want := map[string]string{"backend": "primary", "database": "db", "user": "u"}[l.GetName()]; l.GetValue() != want {
					t.Errorf("%s: label %s=%q, want %q", mf.GetName(), l.GetName(), l.GetValue(), want)
				}
			}
			got[key] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"pgninja_pool_server_connections/active":  1,
		"pgninja_pool_server_connections/idle":    1,
		"pgninja_pool_server_connections/opening": 0,
		"pgninja_pool_server_connections/testing": 0,
		"pgninja_pool_clients_waiting":            0,
		"pgninja_pool_acquires_total":             2,
		"pgninja_pool_dials_total":                2,
		"pgninja_pool_dial_errors_total":          0,
		"pgninja_pool_server_down_seconds":        0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (reported: %v), want %v", name, v, ok, want)
		}
	}
}
