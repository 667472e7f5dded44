package rawconn

import (
	"net"
	"testing"
)

// TestRaceDetectorSeesSocketOrder writes a variable, sends a byte, and
// reads the variable where the byte arrives, in both directions between a
// raw and a plain connection. Under -race it fails unless raw reads and
// writes tell the detector what package syscall tells it.
func TestRaceDetectorSeesSocketOrder(t *testing.T) {
	for _, rawWriter := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var shared int
		seen := make(chan int)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				seen <- -1
				return
			}
			defer c.Close()
			if rawWriter {
				c = c.(*net.TCPConn) // the plain end reads
			} else {
				c = Wrap(c)
			}
			if _, err := c.Read(make([]byte, 1)); err != nil {
				seen <- -1
				return
			}
			seen <- shared
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if rawWriter {
			c = Wrap(c)
		}
		go func() {
			shared = 1
			c.Write([]byte{1})
		}()
		if got := <-seen; got != 1 {
			t.Fatalf("the reader saw %d", got)
		}
		c.Close()
		ln.Close()
	}
}
