package host

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

// MetricKind is the type of a plugin metric.
type MetricKind int

// The metric kinds of proxy_define_metric.
const (
	MetricCounter MetricKind = iota
	MetricGauge
	MetricHistogram
)

// String returns "counter", "gauge" or "histogram".
func (k MetricKind) String() string {
	switch k {
	case MetricCounter:
		return "counter"
	case MetricGauge:
		return "gauge"
	case MetricHistogram:
		return "histogram"
	}
	return "unknown"
}

// Metric is the current value of one metric the plugin defined. Envoy shows the same metric as
// "wasmcustom.<Name>" in its stats.
type Metric struct {
	Name string
	Kind MetricKind
	// Value is the counter's total, the gauge's value, or the last value recorded into the histogram.
	Value int64
	// Count and Sum describe a histogram: how many values were recorded and their sum.
	Count uint64
	Sum   uint64
}

type metric struct {
	name  string
	kind  MetricKind
	value atomic.Int64
	count atomic.Uint64
	sum   atomic.Uint64
}

// metricRegistry holds the plugin's metrics for every instance of a Host, as Envoy's stats store does for every
// VM of a plugin: defining a name again returns the same metric. An id carries the metric type in its low two bits
// and an index above them, like proxy-wasm-cpp-host's ids (the first counter is 4, the first gauge 5, the first
// histogram 6); unlike Envoy a repeated definition returns the same id, not a new id for the same stat. Lookups by
// id read an immutable snapshot, so the per-request paths (increment, record, get) take no lock.
type metricRegistry struct {
	mu     sync.Mutex
	byName map[metricKey]uint32
	list   atomic.Pointer[[3][]*metric] // per type, index = id>>2 - 1
}

type metricKey struct {
	kind MetricKind
	name string
}

func newMetricRegistry() *metricRegistry {
	r := &metricRegistry{byName: map[metricKey]uint32{}}
	r.list.Store(&[3][]*metric{})
	return r
}

func (r *metricRegistry) define(t abi.MetricType, name string) (uint32, abi.Status) {
	if t > abi.MetricTypeMax {
		return 0, abi.StatusBadArgument
	}
	key := metricKey{MetricKind(t), name}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.byName[key]; ok {
		return id, abi.StatusOK
	}
	old := r.list.Load()
	next := *old
	next[t] = append(slices.Clip(old[t]), &metric{name: name, kind: MetricKind(t)})
	id := uint32(len(next[t]))<<2 | t
	r.list.Store(&next)
	r.byName[key] = id
	return id, abi.StatusOK
}

func (r *metricRegistry) lookup(id uint32) *metric {
	t := id & 3
	if t > abi.MetricTypeMax {
		return nil
	}
	l := r.list.Load()[t]
	i := int(id>>2) - 1
	if i < 0 || i >= len(l) {
		return nil
	}
	return l[i]
}

// increment follows Envoy's incrementMetric: a counter only grows (a delta of zero or less is a bad argument), a
// gauge moves either way, a histogram cannot be incremented.
func (r *metricRegistry) increment(id uint32, delta int64) abi.Status {
	switch id & 3 {
	case abi.MetricCounter:
		m := r.lookup(id)
		if m == nil {
			return abi.StatusNotFound
		}
		if delta <= 0 {
			return abi.StatusBadArgument
		}
		m.value.Add(delta)
		return abi.StatusOK
	case abi.MetricGauge:
		m := r.lookup(id)
		if m == nil {
			return abi.StatusNotFound
		}
		m.value.Add(delta)
		return abi.StatusOK
	}
	return abi.StatusBadArgument
}

// record follows Envoy's recordMetric: it adds to a counter, sets a gauge and records into a histogram.
func (r *metricRegistry) record(id uint32, v uint64) abi.Status {
	m := r.lookup(id)
	if m == nil {
		return abi.StatusNotFound
	}
	switch m.kind {
	case MetricCounter:
		m.value.Add(int64(v))
	case MetricGauge:
		m.value.Store(int64(v))
	case MetricHistogram:
		m.value.Store(int64(v))
		m.count.Add(1)
		m.sum.Add(v)
	}
	return abi.StatusOK
}

// get follows Envoy's getMetric: counters and gauges have a value, histograms do not (bad argument).
func (r *metricRegistry) get(id uint32) (uint64, abi.Status) {
	switch id & 3 {
	case abi.MetricCounter, abi.MetricGauge:
		m := r.lookup(id)
		if m == nil {
			return 0, abi.StatusNotFound
		}
		return uint64(m.value.Load()), abi.StatusOK
	}
	return 0, abi.StatusBadArgument
}

func (r *metricRegistry) snapshot() []Metric {
	l := r.list.Load()
	var out []Metric
	for _, ms := range l {
		for _, m := range ms {
			out = append(out, Metric{Name: m.name, Kind: m.kind, Value: m.value.Load(), Count: m.count.Load(), Sum: m.sum.Load()})
		}
	}
	slices.SortFunc(out, func(a, b Metric) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
	})
	return out
}
