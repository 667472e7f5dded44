// Command middleware is a small service that protects GET /hello with
// gatehouse access tokens, using the importable pkg/middleware.
//
//	go run ./examples/middleware -issuer http://localhost:8080/realms/demo -scope hello
//	TOKEN=$(curl -s -d grant_type=client_credentials -d client_id=svc -d client_secret=... \
//	    http://localhost:8080/realms/demo/protocol/openid-connect/token | jq -r .access_token)
//	curl -H "Authorization: Bearer $TOKEN" http://localhost:8081/hello
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/pkg/middleware"
)

func main() {
	issuer := flag.String("issuer", "http://localhost:8080/realms/demo", "issuer URL of the realm whose tokens are accepted")
	addr := flag.String("addr", "localhost:8081", "listen address")
	audience := flag.String("audience", "", "required audience (empty: not checked)")
	scopes := flag.String("scope", "", "space-separated scopes every token must carry")
	clientID := flag.String("client-id", "", "client id for introspection (revocation checks)")
	flag.Parse()

	cfg := middleware.Config{
		Issuer:         *issuer,
		Audience:       *audience,
		RequiredScopes: strings.Fields(*scopes),
		ClientID:       *clientID,
		// The secret comes from the environment, never from a flag that
		// would show in the process list.
		ClientSecret: os.Getenv("CLIENT_SECRET"),
	}
	if cfg.ClientSecret == "" {
		cfg.ClientID = ""
	}
	mw, err := middleware.New(cfg)
	if err != nil {
		slog.Error("configuration", "err", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /hello", mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := middleware.FromContext(r.Context())
		name := c.Username
		if name == "" {
			name = c.AuthorizedParty // a service account
		}
		fmt.Fprintf(w, "hello, %s\n", name)
	})))
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	slog.Info("listening", "addr", *addr, "issuer", *issuer)
	if err := srv.ListenAndServe(); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}
