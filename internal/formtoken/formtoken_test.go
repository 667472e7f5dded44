package formtoken

import (
	"net/http/httptest"
	"testing"
)

func TestTokens(t *testing.T) {
	a, b := New(), New()
	if !Valid(a) || !Valid(b) || a == b {
		t.Fatalf("tokens %q %q", a, b)
	}
	for _, bad := range []string{"", "short", a[:42], a + "x", a[:42] + "!"} {
		if Valid(bad) {
			t.Errorf("Valid(%q)", bad)
		}
	}
	if !Equal(a, a) || Equal(a, b) || Equal("", "") {
		t.Fatal("Equal")
	}
}

func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		headers map[string]string
		want    bool
	}{
		{nil, true},
		{map[string]string{"Sec-Fetch-Site": "same-origin"}, true},
		{map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{map[string]string{"Origin": "http://portal.example"}, true},
		{map[string]string{"Origin": "http://evil.example"}, false},
		{map[string]string{"Origin": "null"}, false},
	} {
		r := httptest.NewRequest("POST", "http://portal.example/portal/login", nil)
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		if got := SameOrigin(r); got != c.want {
			t.Errorf("%v: %v", c.headers, got)
		}
	}
}
