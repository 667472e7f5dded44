package rawconn

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// maxRW is the most one read(2) or write(2) is asked to move, as in
// package net (internal/poll): larger requests are split, since some
// kernels fail them.
const maxRW = 1 << 30

// Conn is a *net.TCPConn whose Read and Write are raw system calls.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	// Read's and Write's arguments and results pass through these fields
	// to callbacks made once per connection, so that a call allocates
	// nothing. The mutexes keep concurrent Reads (or Writes) from sharing
	// them; the descriptor's own lock would serialise them anyway.
	rmu    sync.Mutex
	rbuf   []byte
	rn     int
	rerr   error
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(uintptr) bool
}

// Wrap returns c as a *Conn when it is a *net.TCPConn, and c itself
// otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	rw := &Conn{TCPConn: tc, rc: rc}
	rw.readFn = rw.read
	rw.writeFn = rw.write
	return rw
}

// Read reads as net.Conn's Read does.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.rc.Read(c.readFn)
	n, rerr := c.rn, c.rerr
	c.rbuf, c.rerr = nil, nil
	if err != nil {
		return 0, renamed(err, "read")
	}
	if rerr != nil {
		return n, c.opError("read", rerr)
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// read is the callback of Read: it reports false only when the socket has
// nothing to read yet, which makes RawConn wait for the poller.
func (c *Conn) read(fd uintptr) bool {
	if len(c.rbuf) == 0 {
		return true
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)))
		switch e {
		case 0:
			c.rn = int(n)
			raceRead(fd, c.rbuf[:n])
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			c.rerr = os.NewSyscallError("read", e)
			return true
		}
	}
}

// Write writes as net.Conn's Write does: all of p, or an error.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = p, 0, nil
	err := c.rc.Write(c.writeFn)
	n, werr := c.wn, c.werr
	c.wbuf, c.werr = nil, nil
	if err != nil {
		return n, renamed(err, "write")
	}
	if werr != nil {
		return n, c.opError("write", werr)
	}
	return n, nil
}

// write is the callback of Write. It loops until p is written, and reports
// false only on EAGAIN: the poller signals writability by an edge, so
// giving up while the socket is still writable would wait forever.
func (c *Conn) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		chunk := c.wbuf[c.wn:]
		if len(chunk) > maxRW {
			chunk = chunk[:maxRW]
		}
		raceWrite(chunk)
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&chunk[0])), uintptr(len(chunk)))
		switch e {
		case 0:
			c.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = os.NewSyscallError("write", e)
			return true
		}
	}
	return true
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// renamed gives an error of RawConn (closed connection, deadline) the Op
// of the plain call, which is what net/http and others look for.
func renamed(err error, op string) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
	}
	return err
}
