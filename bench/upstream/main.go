// Command upstream is the smallest useful HTTP upstream: it answers every
// request with 200 and a tiny JSON body, so a gateway pass-through benchmark
// measures the gateway and not the service behind it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/gatehouse/gatehouse/internal/rawconn"
)

// body is the whole answer; fixed so its cost is nil and its length known.
var body = []byte(`{"status":"ok"}` + "\n")

// handler answers every request with body. It drains a request body so a
// keep-alive connection stays reusable after a POST.
func handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{fmt.Sprint(len(body))}
		_, _ = w.Write(body)
	})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := serve(ctx, *addr, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

// serve listens on addr until ctx ends.
func serve(ctx context.Context, addr string, logw io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	fmt.Fprintf(logw, "upstream: listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	// Raw socket calls, as gatehouse makes them: the upstream shares its
	// core with the load generator and should take as little of it as it can.
	go func() { errc <- srv.Serve(rawconn.Listener{Listener: ln}) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
