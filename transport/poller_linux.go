package transport

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// The poller watches the sockets of parked connections: one epoll instance for the process, itself
// waited on through the Go runtime's network poller, so that watching costs no thread and no goroutine
// per connection. Each socket is registered one-shot: it reports once, then stays disarmed until its
// connection parks again.

// pollerEvents is how many events one epoll_wait call takes in.
const pollerEvents = 128

// poller is the process's epoll instance and the table of parked readers it wakes. Safe for concurrent
// use; the goroutine running loop is the only one to call epoll_wait.
type poller struct {
	epfd int
	file *os.File // epfd, registered with the runtime's network poller

	mu     sync.Mutex
	parked map[uint64]*readPump // by park token
	next   uint64               // the last token handed out

	events [pollerEvents]syscall.EpollEvent // loop only
	waitFn func(fd uintptr) bool            // wait, bound once
}

var (
	thePoller     *poller
	thePollerErr  error
	thePollerOnce sync.Once
)

// getPoller returns the process's poller, starting it on first use; an error means parking is not
// available (the process could not create an epoll instance) and readers wait on their goroutines.
func getPoller() (*poller, error) {
	thePollerOnce.Do(func() { thePoller, thePollerErr = startPoller() })
	return thePoller, thePollerErr
}

func startPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("transport: create the parking poller: %w", os.NewSyscallError("epoll_create1", err))
	}
	// Non-blocking, the runtime's poller adopts the descriptor: the epoll instance becomes readable
	// when one of the sockets it watches reports.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		_ = syscall.Close(epfd)
		return nil, fmt.Errorf("transport: create the parking poller: %w", os.NewSyscallError("fcntl", err))
	}
	p := &poller{epfd: epfd, file: os.NewFile(uintptr(epfd), "transport-poller"), parked: make(map[uint64]*readPump)}
	raw, err := p.file.SyscallConn()
	if err != nil {
		_ = p.file.Close()
		return nil, fmt.Errorf("transport: create the parking poller: %w", err)
	}
	p.waitFn = p.wait
	go p.loop(raw)
	return p, nil
}

// loop waits for sockets to report for the life of the process.
func (p *poller) loop(raw syscall.RawConn) {
	for {
		// wait never reports done: Read returns only if the runtime gives up on the descriptor, which
		// it does not while the file is open.
		if err := raw.Read(p.waitFn); err != nil {
			panic(fmt.Sprintf("transport: parking poller stopped: %v", err))
		}
	}
}

// wait takes in the events ready, waking the reader parked behind each, and reports false, for the
// runtime to call it again when the epoll instance next becomes readable. The runtime watches the
// instance edge-triggered, and every event the instance queues makes a new edge: wait must take in all
// that are queued, but need not look again once a call has returned fewer than it could take.
func (p *poller) wait(uintptr) bool {
	for {
		n, err := syscall.EpollWait(p.epfd, p.events[:], 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			panic(fmt.Sprintf("transport: parking poller: epoll_wait: %v", err))
		}
		for i := range n {
			if r := p.take(eventToken(&p.events[i])); r != nil {
				r.woken.Store(true)
				workers.run(r.resumeFn)
			}
		}
		if n < len(p.events) {
			return false
		}
	}
}

// add enters r in the table under a new token.
func (p *poller) add(r *readPump) uint64 {
	p.mu.Lock()
	p.next++
	token := p.next
	p.parked[token] = r
	p.mu.Unlock()
	return token
}

// take removes the reader parked under token and returns it; nil when it is gone already (woken by
// its socket, or by its connection closing). Whoever takes a reader resumes it: exactly once.
func (p *poller) take(token uint64) *readPump {
	p.mu.Lock()
	r := p.parked[token]
	if r != nil {
		delete(p.parked, token)
	}
	p.mu.Unlock()
	return r
}

// count reports how many readers are parked.
func (p *poller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// arm asks the epoll instance to report fd once, under token, when it becomes readable, is shut by the
// peer or fails. registered tells whether fd was armed before by this connection (and so is in the
// instance's set, disarmed).
func (p *poller) arm(fd int, token uint64, registered bool) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT}
	setEventToken(&ev, token)
	op := syscall.EPOLL_CTL_ADD
	if registered {
		op = syscall.EPOLL_CTL_MOD
	}
	err := syscall.EpollCtl(p.epfd, op, fd, &ev)
	switch {
	case op == syscall.EPOLL_CTL_ADD && errors.Is(err, syscall.EEXIST):
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, fd, &ev)
	case op == syscall.EPOLL_CTL_MOD && errors.Is(err, syscall.ENOENT):
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// The event's 64 bits of user data carry the token: syscall.EpollEvent names them Fd and Pad.
func setEventToken(ev *syscall.EpollEvent, token uint64) {
	ev.Fd = int32(uint32(token))
	ev.Pad = int32(uint32(token >> 32))
}

func eventToken(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// parkingSupported reports whether connections can park on this platform.
const parkingSupported = true
