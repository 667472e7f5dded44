package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heapWatch samples the heap of the test process (the server runs in it)
// until stopped, and reports the highest HeapInuse seen.
type heapWatch struct {
	peak atomic.Uint64
	stop chan struct{}
	done sync.WaitGroup
}

func watchHeap() *heapWatch {
	h := &heapWatch{stop: make(chan struct{})}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.peak.Load() {
				h.peak.Store(ms.HeapInuse)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapWatch) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak.Load()
}

// patternReader yields left bytes, repeating chunk, without holding them.
type patternReader struct {
	chunk []byte
	left  int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := copy(b, p.chunk)
	p.left -= int64(n)
	return n, nil
}

// TestIssue4Streaming sends 256 MiB up and 256 MiB down through the real
// server's gateway, the upload through a pipe (no Content-Length), and
// checks that the process's heap stays far below the size of the bodies.
func TestIssue4Streaming(t *testing.T) {
	env := startGateway(t)
	ts := env.ts
	tok := gwToken(t, ts, gwRealm, "bob", bobPW4).str("access_token")
	const size = 256 << 20
	const limit = 64 << 20 // what the heap may grow by, bodies included

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	hw := watchHeap()
	start := time.Now()

	// Upload through a pipe: chunked, the gateway cannot know the size.
	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 256<<10)
		for i := range chunk {
			chunk[i] = byte(i)
		}
		_, err := io.CopyBuffer(pw, &patternReader{chunk: chunk, left: size}, make([]byte, len(chunk)))
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/files/upload", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ Received int64 }
	err = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || up.Received != size {
		t.Fatalf("upload: status %d, upstream received %d bytes (%v), want %d", resp.StatusCode, up.Received, err, size)
	}
	upDur := time.Since(start)

	// Download, read through a pipe as it arrives.
	req, err = http.NewRequest(http.MethodGet, ts.URL+"/files/download?n="+strconv.Itoa(size), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dr, dw := io.Pipe()
	go func() {
		_, err := io.Copy(dw, resp.Body)
		dw.CloseWithError(err)
	}()
	n, err := io.Copy(io.Discard, dr)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || n != size {
		t.Fatalf("download: status %d, %d bytes (%v), want %d", resp.StatusCode, n, err, size)
	}
	peak := hw.Stop()
	t.Logf("256 MiB up in %v, down in %v; heap in use %d MiB before, %d MiB at most",
		upDur.Round(time.Millisecond), (time.Since(start) - upDur).Round(time.Millisecond), base.HeapInuse>>20, peak>>20)
	if peak > base.HeapInuse+limit {
		t.Errorf("heap grew from %d MiB to %d MiB while streaming %d MiB", base.HeapInuse>>20, peak>>20, size>>20)
	}
}
