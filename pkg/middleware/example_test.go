package middleware_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/gatehouse/gatehouse/pkg/middleware"
)

// A service protects its API with tokens of one gatehouse realm: only
// requests with a valid access token carrying scope "risks:read" reach the
// handler, which reads the caller from the request context.
func Example() {
	mw, err := middleware.New(middleware.Config{
		Issuer:         "https://auth.example.com/realms/acme",
		Audience:       "risks-api",
		RequiredScopes: []string{"risks:read"},
		// Optional: honour logouts and revocations within a second.
		ClientID:     "risks-api",
		ClientSecret: "from-your-secret-store",
	})
	if err != nil {
		log.Fatal(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := middleware.FromContext(r.Context())
		fmt.Fprintf(w, "hello, %s\n", c.Username)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /risks", mw.Handler(hello))
	_ = http.ListenAndServe("localhost:8081", mux)
}
