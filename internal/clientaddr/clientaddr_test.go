package clientaddr

import (
	"net/http"
	"testing"
)

func TestOfIgnoresForwardingHeaders(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:5123":   "192.0.2.7",
		"[2001:db8::1]:80": "2001:db8::1",
		"@":                "@", // a unix socket peer has no port
	} {
		r, _ := http.NewRequest("GET", "http://x/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		r.Header.Set("X-Real-Ip", "203.0.113.9")
		if got := Of(r); got != want {
			t.Errorf("Of(%q) = %q, want %q", remote, got, want)
		}
	}
}
