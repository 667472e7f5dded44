package core_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/coretest"
)

// RealmForHost routes gateway requests by Host: the gateway domain itself or
// a subdomain of it, never a look-alike.
func TestRealmForHost(t *testing.T) {
	svc := coretest.New(t, `{"realm": "api", "enabled": true,
	  "gatehouse": {"gateway": {"domain": "api.example.com", "operations": []}}}`)
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, ok := svc.RealmForHost("api.example.com"); ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // the domain list reloads after an import
	}
	for host, want := range map[string]bool{
		"api.example.com":           true,
		"API.Example.com":           true,
		"api.example.com.":          true,
		"api.example.com:8443":      true,
		"acme.api.example.com":      true,
		"evilapi.example.com":       false,
		"api.example.com.evil":      false,
		"example.com":               false,
		"acme.api.example.com.evil": false,
		"":                          false,
	} {
		realm, ok := svc.RealmForHost(host)
		if ok != want || (ok && realm != "api") {
			t.Errorf("RealmForHost(%q) = %q, %v; want %v", host, realm, ok, want)
		}
	}
}
