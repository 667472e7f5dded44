package server

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/realmjson"
	"github.com/gatehouse/gatehouse/internal/store"
)

//go:embed demo-realm.json
var demoRealmJSON string

// DemoRealm is the name of the realm created on first start.
const DemoRealm = "demo"

// demoCredentials are generated on first start and kept in the data
// directory (mode 0600) so that later starts can print working commands:
// the store itself only has hashes.
type demoCredentials struct {
	ServiceSecret string `json:"serviceSecret"`
	Password      string `json:"password"`
}

func (s *Server) ensureDemo(ctx context.Context) error {
	credFile := filepath.Join(s.cfg.DataDir, "demo-credentials.json")
	exists, err := s.Core.RealmExists(ctx, DemoRealm)
	if err != nil {
		return err
	}
	var creds demoCredentials
	if !exists {
		if creds.ServiceSecret, err = password.GenerateSecret(); err != nil {
			return err
		}
		pw, err := password.GenerateSecret()
		if err != nil {
			return err
		}
		creds.Password = pw[:16]
		doc := strings.NewReplacer("{{SERVICE_SECRET}}", creds.ServiceSecret, "{{DEMO_PASSWORD}}", creds.Password).Replace(demoRealmJSON)
		p, err := realmjson.Parse([]byte(doc))
		if err != nil {
			return fmt.Errorf("demo realm: %w", err)
		}
		switch err := s.Core.ImportRealm(ctx, p, false); {
		case errors.Is(err, store.ErrAlreadyExists):
			// Another replica on the same database created it a moment
			// ago; its credentials are in its data directory.
			exists, creds = true, demoCredentials{}
		case err != nil:
			return fmt.Errorf("demo realm: %w", err)
		default:
			b, _ := json.Marshal(creds)
			if err := os.WriteFile(credFile, b, 0o600); err != nil {
				return err
			}
			s.log.Info("demo realm created", "realm", DemoRealm)
		}
	}
	if exists {
		if b, err := os.ReadFile(credFile); err == nil {
			_ = json.Unmarshal(b, &creds)
		}
	}
	s.printDemo(creds)
	return nil
}

// printDemo writes a curl command per grant that works when pasted.
func (s *Server) printDemo(c demoCredentials) {
	tok := s.Core.Issuer(DemoRealm) + "/protocol/openid-connect/token"
	out := s.cfg.Out
	fmt.Fprintf(out, "\ngatehouse demo realm %q — issuer %s\n\n", DemoRealm, s.Core.Issuer(DemoRealm))
	if c.Password == "" {
		fmt.Fprintf(out, "(demo credentials file missing from %s; the demo realm still works with credentials you set)\n\n", s.cfg.DataDir)
		return
	}
	fmt.Fprintf(out, "# password grant (user demo, public client demo-app)\n")
	fmt.Fprintf(out, "curl -s -X POST %s \\\n  -d grant_type=password -d client_id=demo-app -d username=demo -d password=%s\n\n", tok, c.Password)
	fmt.Fprintf(out, "# client_credentials grant (confidential client demo-service)\n")
	fmt.Fprintf(out, "curl -s -X POST %s \\\n  -d grant_type=client_credentials -d client_id=demo-service -d client_secret=%s\n\n", tok, c.ServiceSecret)
	fmt.Fprintf(out, "# refresh_token grant (paste the refresh_token of the password grant)\n")
	fmt.Fprintf(out, "curl -s -X POST %s \\\n  -d grant_type=refresh_token -d client_id=demo-app -d refresh_token=REFRESH_TOKEN\n\n", tok)
	fmt.Fprintf(out, "# logout (ends the session of that refresh token)\n")
	fmt.Fprintf(out, "curl -s -X POST %s/protocol/openid-connect/logout \\\n  -d client_id=demo-app -d refresh_token=REFRESH_TOKEN\n\n", s.Core.Issuer(DemoRealm))
}
