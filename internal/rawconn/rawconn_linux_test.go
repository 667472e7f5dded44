package rawconn

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestWrapsTCP(t *testing.T) {
	s, c := pair(t)
	if _, ok := s.(*Conn); !ok {
		t.Errorf("accepted connection is %T, want *Conn", s)
	}
	if _, ok := c.(*Conn); !ok {
		t.Errorf("wrapped connection is %T, want *Conn", c)
	}
}

// switches is the process's context voluntary context switches so far: threads that went to sleep. Involuntary ones depend on what else the machine runs.
func switches(t *testing.T) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return int64(ru.Nvcsw)
}

// TestEchoHelper is the other process of TestSparesTheMonitor: it echoes
// each byte on the connection to RAWCONN_ECHO after a short pause.
func TestEchoHelper(t *testing.T) {
	addr := os.Getenv("RAWCONN_ECHO")
	if addr == "" {
		t.Skip("helper process only")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
		time.Sleep(100 * time.Microsecond)
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// TestSparesTheMonitor is the reason the package exists. With one
// processor that idles while it waits for the network, as a server's does
// between requests, each read and write through package net wakes the
// runtime's monitor thread, which then polls every 20 µs; raw reads and
// writes leave it asleep. Context switches count the difference without
// timing anything. The peer is another process, so that this one's
// processor really idles.
func TestSparesTheMonitor(t *testing.T) {
	if raceEnabled {
		t.Skip("with -race, raw reads and writes also call package syscall, to tell the detector what they order")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	measure := func(wrap bool) int64 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEchoHelper$")
		cmd.Env = append(os.Environ(), "RAWCONN_ECHO="+ln.Addr().String())
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if wrap {
			c = Wrap(c)
		}
		buf := []byte{0}
		before := switches(t)
		for range 500 {
			if _, err := c.Write(buf); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		return switches(t) - before
	}
	plain, raw := measure(false), measure(true)
	t.Logf("context switches for 500 round trips: package net %d, raw %d", plain, raw)
	if raw*2 > plain {
		t.Fatalf("raw reads and writes made %d context switches, package net's %d: want fewer than half", raw, plain)
	}
}
