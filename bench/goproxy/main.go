// Command goproxy is the smallest reverse proxy the standard library makes:
// httputil.ReverseProxy in front of one upstream, with pooled keep-alive
// connections and no checks of any kind. bench/gateway.sh runs it beside
// the gateway as a reference: what the proxy hop alone costs in Go on the
// same cores, before any token is looked at.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:9000", "upstream base URL")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		fmt.Fprintln(os.Stderr, "goproxy: bad -upstream")
		os.Exit(2)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	srv := &http.Server{Addr: *addr, Handler: p, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
}
