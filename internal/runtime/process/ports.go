package process

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// portLease is a block of ports handed to one process: the port it binds
// (SAGEMAKER_BIND_TO_PORT) and the ports it may use for its own purposes
// (SAGEMAKER_SAFE_PORT_RANGE, inclusive, never containing Bind).
type portLease struct {
	Bind           int
	SafeLo, SafeHi int
}

func (l portLease) safeRange() string {
	return strconv.Itoa(l.SafeLo) + "-" + strconv.Itoa(l.SafeHi)
}

func (l portLease) ports() []int {
	ps := []int{l.Bind}
	for p := l.SafeLo; p <= l.SafeHi; p++ {
		ps = append(ps, p)
	}
	return ps
}

// portAllocator hands out port leases that never overlap while held.
//
// With no range configured, the bind port is chosen by the OS (listen on
// 127.0.0.1:0, then close) and the safe range is the safe ports that
// follow it. Those ports are guaranteed not to be leased to another
// instance of this runtime, but another program on the machine may still
// take them. With a range configured, the range is cut into blocks of
// 1+safe ports and every port of a block is checked free before it is
// leased.
type portAllocator struct {
	lo, hi int              // configured range; zero means the OS picks
	safe   int              // safe ports per lease
	free   func([]int) bool // reports whether ports can be bound now

	mu   sync.Mutex
	held map[int]bool // every port of every lease held
	next int          // next block to try in a configured range
}

func newPortAllocator(lo, hi, safe int) *portAllocator {
	return &portAllocator{lo: lo, hi: hi, safe: safe, free: allFree, held: make(map[int]bool)}
}

// errNoPorts reports that every block of the configured range is in use.
var errNoPorts = errors.New("no free ports")

func (a *portAllocator) allocate() (portLease, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.lo == 0 {
		return a.allocateOS()
	}
	return a.allocateRange()
}

func (a *portAllocator) allocateOS() (portLease, error) {
	const attempts = 50
	var lastErr error
	for range attempts {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return portLease{}, fmt.Errorf("pick a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		l := portLease{Bind: port, SafeLo: port + 1, SafeHi: port + a.safe}
		if l.SafeHi > 65535 || a.anyHeld(l) {
			lastErr = fmt.Errorf("port %d: safe range %s unusable", port, l.safeRange())
			continue
		}
		a.hold(l)
		return l, nil
	}
	return portLease{}, fmt.Errorf("%w after %d attempts: %w", errNoPorts, attempts, lastErr)
}

func (a *portAllocator) allocateRange() (portLease, error) {
	size := 1 + a.safe
	blocks := (a.hi - a.lo + 1) / size
	for i := range blocks {
		b := (a.next + i) % blocks
		start := a.lo + b*size
		l := portLease{Bind: start, SafeLo: start + 1, SafeHi: start + a.safe}
		if a.anyHeld(l) || !a.free(l.ports()) {
			continue
		}
		a.next = (b + 1) % blocks
		a.hold(l)
		return l, nil
	}
	return portLease{}, fmt.Errorf("%w in range %d-%d", errNoPorts, a.lo, a.hi)
}

func (a *portAllocator) release(l portLease) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range l.ports() {
		delete(a.held, p)
	}
}

func (a *portAllocator) anyHeld(l portLease) bool {
	for _, p := range l.ports() {
		if a.held[p] {
			return true
		}
	}
	return false
}

func (a *portAllocator) hold(l portLease) {
	for _, p := range l.ports() {
		a.held[p] = true
	}
}

// allFree reports whether every port can be listened on at 127.0.0.1 now.
// On Linux a port in the ephemeral range can be held by a client socket,
// even one in TIME_WAIT, which is why a PortRange belongs outside
// net.ipv4.ip_local_port_range.
func allFree(ports []int) bool {
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}
