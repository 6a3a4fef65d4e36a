package host

import (
	"sync"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/internal/abi"
)

// sharedData is the key-value store of proxy_get/set_shared_data, shared by every instance of a Host the way
// proxy-wasm-cpp-host shares it between the VMs (worker threads) of one vm_id. Each write gets a new
// compare-and-swap number; a write carrying a non-zero cas that is not the key's current one fails with
// CasMismatch, a write with cas 0 always succeeds.
type sharedData struct {
	mu      sync.Mutex
	entries map[string]sharedEntry
	nextCas uint32
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

func (d *sharedData) get(key string) ([]byte, uint32, abi.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[key]
	if !ok {
		return nil, 0, abi.StatusNotFound
	}
	return e.value, e.cas, abi.StatusOK
}

// set stores value, which the caller must not modify afterwards.
func (d *sharedData) set(key string, value []byte, cas uint32) abi.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entries == nil {
		d.entries = map[string]sharedEntry{}
	}
	if e, ok := d.entries[key]; ok && cas != 0 && cas != e.cas {
		return abi.StatusCasMismatch
	}
	d.nextCas++
	if d.nextCas == 0 {
		d.nextCas++
	}
	d.entries[key] = sharedEntry{value: value, cas: d.nextCas}
	return abi.StatusOK
}

// sharedQueues are the queues of proxy_register/resolve/enqueue/dequeue_shared_queue. As in proxy-wasm-cpp-host a
// queue is named by (vm_id, name), registering an existing name reopens it (keeping its items) and makes the
// registering instance the one told about new items, and tokens start at 1.
type sharedQueues struct {
	mu      sync.Mutex
	byName  map[queueKey]uint32
	queues  map[uint32]*sharedQueue
	nextTok uint32
}

type queueKey struct{ vmID, name string }

type sharedQueue struct {
	items [][]byte
	owner *instance // told through proxy_on_queue_ready
}

func (q *sharedQueues) register(vmID, name string, owner *instance) uint32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.byName == nil {
		q.byName, q.queues = map[queueKey]uint32{}, map[uint32]*sharedQueue{}
	}
	key := queueKey{vmID, name}
	tok, ok := q.byName[key]
	if !ok {
		q.nextTok++
		tok = q.nextTok
		q.byName[key] = tok
		q.queues[tok] = &sharedQueue{}
	}
	q.queues[tok].owner = owner
	return tok
}

func (q *sharedQueues) resolve(vmID, name string) (uint32, abi.Status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	tok, ok := q.byName[queueKey{vmID, name}]
	if !ok {
		return 0, abi.StatusNotFound
	}
	return tok, abi.StatusOK
}

// enqueue appends value (which the caller must not modify afterwards) and returns the instance to notify.
func (q *sharedQueues) enqueue(tok uint32, value []byte) (*instance, abi.Status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq, ok := q.queues[tok]
	if !ok {
		return nil, abi.StatusNotFound
	}
	sq.items = append(sq.items, value)
	return sq.owner, abi.StatusOK
}

func (q *sharedQueues) dequeue(tok uint32) ([]byte, abi.Status) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq, ok := q.queues[tok]
	if !ok {
		return nil, abi.StatusNotFound
	}
	if len(sq.items) == 0 {
		return nil, abi.StatusEmpty
	}
	v := sq.items[0]
	sq.items[0] = nil
	sq.items = sq.items[1:]
	return v, abi.StatusOK
}

// disown stops notifying inst, which is being closed.
func (q *sharedQueues) disown(inst *instance) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, sq := range q.queues {
		if sq.owner == inst {
			sq.owner = nil
		}
	}
}
