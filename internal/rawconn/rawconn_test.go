package rawconn

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection, the accepted end
// read through Listener and the dialled end through Wrap.
func pair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := Listener{Listener: ln}.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client = Wrap(c)
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func TestWrapKeepsOtherConnections(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Fatal("Wrap changed a net.Pipe connection")
	}
}

// TestBulkBothWays moves more than the sockets buffer in both directions at
// once, so that writes meet EAGAIN and reads wait for the poller.
func TestBulkBothWays(t *testing.T) {
	s, c := pair(t)
	data := make([]byte, 16<<20)
	rand.Read(data)
	var wg sync.WaitGroup
	check := func(from, to net.Conn) {
		defer wg.Done()
		got := make(chan []byte, 1)
		go func() {
			b, err := io.ReadAll(io.LimitReader(to, int64(len(data))))
			if err != nil {
				t.Error(err)
			}
			got <- b
		}()
		n, err := from.Write(data)
		if err != nil || n != len(data) {
			t.Errorf("Write = %d, %v", n, err)
		}
		if !bytes.Equal(<-got, data) {
			t.Error("the bytes read differ from the bytes written")
		}
	}
	wg.Add(2)
	go check(s, c)
	go check(c, s)
	wg.Wait()
}

func TestEOFAndZeroRead(t *testing.T) {
	s, c := pair(t)
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Fatalf("zero-length Read = %d, %v", n, err)
	}
	if _, err := c.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	b, err := io.ReadAll(s)
	if err != nil || string(b) != "last" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v", n, err)
	}
}

// TestErrorsLookLikeNet checks the errors net/http and others inspect: a
// deadline is a timeout with Op "read", Close wakes a blocked Read with
// net.ErrClosed, and writing to a reset connection fails with Op "write".
func TestErrorsLookLikeNet(t *testing.T) {
	s, c := pair(t)
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := s.Read(make([]byte, 1))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || !oe.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline = %#v, want a read timeout", err)
	}
	s.SetReadDeadline(time.Time{})

	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read interrupted by Close = %v", err)
	}

	// Linger 0 makes Close send a reset, so the other end's writes fail.
	c.Close()
	s2, c2 := pair(t)
	c2.(interface{ SetLinger(int) error }).SetLinger(0)
	c2.Close()
	var werr error
	for range 100 {
		if _, werr = s2.Write([]byte("x")); werr != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.As(werr, &oe) || oe.Op != "write" {
		t.Fatalf("Write to a reset connection = %v, want an OpError with Op write", werr)
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	s, c := pair(t)
	const writers, each = 8, 2000
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := c.Write([]byte("abcd")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	total := make(chan int, 4)
	for range 4 {
		go func() {
			n := 0
			buf := make([]byte, 3)
			for {
				k, err := s.Read(buf)
				n += k
				if err != nil {
					total <- n
					return
				}
			}
		}()
	}
	wg.Wait()
	c.Close()
	sum := 0
	for range 4 {
		sum += <-total
	}
	if sum != writers*each*4 {
		t.Fatalf("read %d bytes, wrote %d", sum, writers*each*4)
	}
}

// TestHTTPServer serves net/http over Listener, including the background
// read net/http starts to notice a client that hangs up.
func TestHTTPServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-r.Context().Done()
			close(gone)
			return
		}
		io.WriteString(w, "hello "+r.URL.Path)
	})}
	go srv.Serve(Listener{Listener: ln})
	defer srv.Close()
	for i := range 50 {
		res, err := http.Get("http://" + ln.Addr().String() + "/n")
		if err != nil {
			t.Fatal(i, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != "hello /n" {
			t.Fatalf("body %q", b)
		}
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context did not end when the client hung up")
	}
}
