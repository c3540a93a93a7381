package broker

// ring is a double-ended queue on a circular buffer whose capacity is a power
// of two. It grows by doubling and halves once it is three-quarters empty, so
// a burst does not pin its memory after it drains. Popped slots are zeroed so
// that the garbage collector can reclaim the messages they pointed to.
type ring[T any] struct {
	buf  []T
	head int // index of the first element
	n    int
}

const ringMinCap = 16

func (r *ring[T]) len() int { return r.n }

// at returns a pointer to element i, 0 ≤ i < len.
func (r *ring[T]) at(i int) *T { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

func (r *ring[T]) pushBack(v T) {
	if r.n == len(r.buf) {
		r.resize(max(ringMinCap, 2*len(r.buf)))
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
}

func (r *ring[T]) pushFront(v T) {
	if r.n == len(r.buf) {
		r.resize(max(ringMinCap, 2*len(r.buf)))
	}
	r.head = (r.head - 1) & (len(r.buf) - 1)
	r.buf[r.head] = v
	r.n++
}

// popFront removes and returns the first element; the ring must not be empty.
func (r *ring[T]) popFront() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if len(r.buf) > ringMinCap && r.n <= len(r.buf)/4 {
		r.resize(len(r.buf) / 2)
	}
	return v
}

// truncate keeps the first n elements and zeroes the rest.
func (r *ring[T]) truncate(n int) {
	var zero T
	for i := n; i < r.n; i++ {
		*r.at(i) = zero
	}
	r.n = n
	if len(r.buf) > ringMinCap && r.n <= len(r.buf)/4 {
		r.resize(max(ringMinCap, len(r.buf)/2))
	}
}

// reset empties the ring and releases its buffer.
func (r *ring[T]) reset() { *r = ring[T]{} }

func (r *ring[T]) resize(capacity int) {
	buf := make([]T, capacity)
	for i := 0; i < r.n; i++ {
		buf[i] = *r.at(i)
	}
	r.buf, r.head = buf, 0
}
