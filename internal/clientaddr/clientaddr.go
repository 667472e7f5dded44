// Package clientaddr names the client of a request the way every front
// door does for rate limits and brute-force records: by the address the
// connection came from. Forwarding headers (X-Forwarded-For, Forwarded,
// X-Real-IP) are not read: gatehouse does not trust a header it cannot
// verify, and a client could otherwise pick a fresh address per request.
package clientaddr

import (
	"net"
	"net/http"
)

// Of is the host part of r's remote address.
func Of(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Limiter decides whether a client address may make another request; the
// front doors take one (nil allows everything), and one value serves them
// all so that one budget covers every endpoint that accepts credentials.
type Limiter interface {
	// Allow reports whether the request may go on, and if not, how many
	// seconds to wait.
	Allow(ip string) (ok bool, retryAfter int)
}
