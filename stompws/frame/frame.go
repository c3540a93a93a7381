package frame

// Header is one header line. Name and Value alias parser memory (see [Frame]); copy them to keep
// them past the emit callback.
type Header struct{ Name, Value []byte }

// Frame is one parsed frame. Command is one of the command constants of this package (the
// constant itself, never a fresh allocation). Headers are in wire order, unescaped per the
// parser's version, duplicates kept. All slices alias the parser's memory or the bytes passed to
// [Parser.Feed] and are valid only until the emit callback returns; a Frame must not be retained
// or used from another goroutine past that point.
type Frame struct {
	Command string
	Headers []Header
	Body    []byte
}

// Get returns the value of the first header named name and true, or nil and false when there is
// none. The first occurrence wins, as the specifications require of repeated headers. Get does not
// allocate.
func (f *Frame) Get(name string) ([]byte, bool) {
	for i := range f.Headers {
		if string(f.Headers[i].Name) == name {
			return f.Headers[i].Value, true
		}
	}
	return nil, false
}

// Has reports whether the frame has at least one header named name.
func (f *Frame) Has(name string) bool {
	_, ok := f.Get(name)
	return ok
}
