//go:build !linux

package transport

import "errors"

// parkingSupported reports whether connections can park on this platform: not without epoll, so
// ServeReads waits on a goroutine.
const parkingSupported = false

// poller is not available on this platform; getPoller says so.
type poller struct{}

func getPoller() (*poller, error) {
	return nil, errors.New("transport: parking is not supported on this platform")
}

func (p *poller) add(*readPump) uint64        { panic("transport: no poller") }
func (p *poller) take(uint64) *readPump       { return nil }
func (p *poller) count() int                  { return 0 }
func (p *poller) arm(int, uint64, bool) error { panic("transport: no poller") }
