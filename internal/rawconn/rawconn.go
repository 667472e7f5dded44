// Package rawconn gives TCP connections whose reads and writes do not
// enter the Go scheduler's system-call state.
//
// Every read(2) and write(2) that package net makes goes through
// syscall.Syscall, which tells the scheduler the goroutine may block. On a
// server whose processor goes idle between requests, that has two costs
// that grow with the request rate. First, the idle runtime has put its
// monitor thread (sysmon) to sleep, and the next system call wakes it; it
// then polls every 20 µs for at least a millisecond, preempting the
// server's own thread each time on a machine with one core for the
// process. Second, a call still in progress at two successive polls loses
// its processor to another thread, and a loopback write often lasts that
// long, since the kernel runs the receiver's TCP path inside it. With
// GOMAXPROCS=1 at 12,000 proxied requests/s, that was 8,700 monitor
// wake-ups and 7,000 involuntary context switches a second, and 13 % of
// the core: 74 % busy against 61 % with raw calls (docs/benchmarks-gateway.md).
//
// A socket that package net opened is non-blocking: read and write return
// EAGAIN instead of waiting, so there is nothing for the scheduler to hand
// off. Conn issues them as raw system calls through syscall.RawConn, which
// keeps everything else of package net: waiting on the network poller,
// deadlines, Close waking a blocked Read, and net.OpError values with the
// usual Op names, so callers such as net/http see the errors they expect.
//
// Only Read and Write change; every other method, including ReadFrom and
// WriteTo (sendfile and splice), is the *net.TCPConn's own. On systems
// other than Linux, Wrap returns the connection unchanged.
package rawconn

import "net"

// Listener wraps every connection its embedded listener accepts.
type Listener struct {
	net.Listener
}

// Accept waits for the next connection and wraps it.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
