package host

// contextTable maps the context ids of an instance's live streams to their state, for proxy_set_effective_context.
// Every stream enters it at context creation and leaves it at proxy_on_delete, so it sits on the per-stream path;
// ids are handed out in sequence per instance, so the low bits of the id spread the live ones evenly and a small
// open-addressed table (linear probing, deletion by backward shift) beats a general map, which also re-seeds
// itself each time it becomes empty.
type contextTable struct {
	slots []contextSlot // length a power of two, or zero
	n     int
}

type contextSlot struct {
	id uint32 // 0: free (0 is never a stream's id)
	st *streamState
}

func (t *contextTable) get(id uint32) (*streamState, bool) {
	if t.n == 0 || id == 0 {
		return nil, false
	}
	mask := uint32(len(t.slots) - 1)
	for i := id & mask; ; i = (i + 1) & mask {
		switch t.slots[i].id {
		case id:
			return t.slots[i].st, true
		case 0:
			return nil, false
		}
	}
}

// put adds or replaces id's entry.
func (t *contextTable) put(id uint32, st *streamState) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := uint32(len(t.slots) - 1)
	for i := id & mask; ; i = (i + 1) & mask {
		switch t.slots[i].id {
		case id:
			t.slots[i].st = st
			return
		case 0:
			t.slots[i] = contextSlot{id, st}
			t.n++
			return
		}
	}
}

func (t *contextTable) grow() {
	old := t.slots
	t.slots, t.n = make([]contextSlot, max(16, 2*len(old))), 0
	for _, s := range old {
		if s.id != 0 {
			t.put(s.id, s.st)
		}
	}
}

func (t *contextTable) remove(id uint32) {
	if t.n == 0 || id == 0 {
		return
	}
	mask := uint32(len(t.slots) - 1)
	i := id & mask
	for t.slots[i].id != id {
		if t.slots[i].id == 0 {
			return
		}
		i = (i + 1) & mask
	}
	// Backward shift: move later entries of the probe run into the hole when that brings them no further from
	// their home slot, so that lookups never need tombstones.
	for j := (i + 1) & mask; t.slots[j].id != 0; j = (j + 1) & mask {
		home := t.slots[j].id & mask
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = contextSlot{}
	t.n--
}

// clear forgets every entry, keeping the storage.
func (t *contextTable) clear() {
	clear(t.slots)
	t.n = 0
}
