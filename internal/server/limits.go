package server

import (
	"net/http"
	"time"
)

// defaultBodyReadTimeout bounds the time a client may take to send the body
// of a request to one of gatehouse's own endpoints. Their bodies are forms
// and JSON documents of a few kilobytes, so this is far above what a slow
// client needs, and far below holding a connection and a goroutine for as
// long as a client keeps trickling bytes.
const defaultBodyReadTimeout = 15 * time.Second

// maxHeaderBytes bounds a request's header block. A bearer token, a session
// cookie and a gateway client's own headers fit many times over; the
// standard library's default is 1 MB.
const maxHeaderBytes = 64 << 10

// bodyDeadline sets a read deadline of d on every request that has a body,
// so that a client trickling one gets its connection closed (the handler
// sees a read error and answers 4xx) instead of holding it and a goroutine
// forever. A body read to its end needs nothing more: the server then lifts
// the deadline itself, before it starts watching the connection for the
// client going away, so the request's context is not cancelled by it. The
// gateway lifts it before it proxies (see streamingBody).
func bodyDeadline(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		d = defaultBodyReadTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasBody(r) {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		next.ServeHTTP(w, r)
	})
}

// streamingBody lifts bodyDeadline's deadline for the gateway, whose
// proxied uploads may stream for long and are bounded by its own idle
// timeout instead.
func streamingBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasBody(r) {
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

func hasBody(r *http.Request) bool { return r.Body != nil && r.Body != http.NoBody }
