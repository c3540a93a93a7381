package frame

// The defaults that [Limits.WithDefaults] fills in.
const (
	DefaultMaxFrameBytes  = 4 << 20   // 4 MiB per frame
	DefaultMaxHeaders     = 1000      // header lines per frame
	DefaultMaxHeaderBytes = 100 << 10 // 100 KiB per header line
)

// Limits bound what a peer can make the parser buffer. Zero (or negative) fields take the
// defaults. Sizes are in bytes; a frame's size counts its EOLs but not its terminating NUL. Every
// limit is checked before memory grows for it, so a hostile peer costs at most MaxFrameBytes+1
// bytes of buffer per connection, plus MaxHeaders header records.
type Limits struct {
	MaxFrameBytes  int // whole frame: command line + header lines + body; default 4 MiB (4<<20)
	MaxHeaders     int // header lines per frame; default 1000
	MaxHeaderBytes int // bytes of one header line (or the command line), excluding the EOL; default 100 KiB (100<<10)
}

// WithDefaults returns l with every zero or negative field replaced by its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}
