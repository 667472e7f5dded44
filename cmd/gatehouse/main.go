// Command gatehouse issues and enforces API access tokens: a
// Keycloak-compatible token server with an API gateway, in one binary.
//
//	gatehouse serve   [--addr HOST:PORT] [--data DIR] [--import-realm FILE]... [--db URL]
//	gatehouse import  FILE [--overwrite] [--data DIR | --db URL]
//	gatehouse export  --realm R [--data DIR | --db URL] [--out FILE]
//	gatehouse keys rotate --realm R [--alg RS256|PS256|ES256|EdDSA] [--data DIR | --db URL]
//	gatehouse users unlock --realm R --username U [--data DIR | --db URL]
//	gatehouse seed    --realm R --users N [--sessions M] [--data DIR | --db URL]
//
// The admin commands open the same store serve does: the embedded SQLite
// database under --data, or PostgreSQL with --db, with the master key from
// $GATEHOUSE_MASTER_KEY, --master-key-file or DIR/master.key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/core"
	"github.com/gatehouse/gatehouse/internal/jwt"
	"github.com/gatehouse/gatehouse/internal/keys"
	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/store"
)

const usage = `gatehouse issues and enforces API access tokens.

Usage:
  gatehouse serve   [--addr HOST:PORT] [--data DIR] [--import-realm FILE]... [--db URL]
  gatehouse import  FILE [--overwrite] [--data DIR | --db URL]
  gatehouse export  --realm R [--data DIR | --db URL] [--out FILE]
  gatehouse keys rotate --realm R [--alg ALG] [--data DIR | --db URL]
  gatehouse users unlock --realm R --username U [--data DIR | --db URL]
  gatehouse seed    --realm R --users N [--sessions M] [--data DIR | --db URL]

Run "gatehouse COMMAND -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout, stderr)
	case "import":
		err = importCmd(args[1:], stdout, stderr)
	case "export":
		err = exportCmd(args[1:], stdout, stderr)
	case "keys":
		err = keysCmd(args[1:], stdout, stderr)
	case "users":
		err = usersCmd(args[1:], stdout, stderr)
	case "seed":
		err = seedCmd(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "gatehouse %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "gatehouse %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{"--log-level: " + err.Error()}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address `HOST:PORT`")
	data := fs.String("data", "./gatehouse-data", "data `DIR` (embedded SQLite database, master key)")
	db := fs.String("db", "", "PostgreSQL `URL` (default: embedded SQLite under --data; or set "+dbEnv+", which keeps the password out of the process list)")
	publicURL := fs.String("public-url", "", "public base `URL` of this server, the prefix of every issuer (default http://ADDR)")
	masterKey := fs.String("master-key-file", "", "master key `FILE` (default DIR/master.key; or set GATEHOUSE_MASTER_KEY)")
	noDemo := fs.Bool("no-demo", false, "do not create the demo realm")
	defaultRealm := fs.String("default-realm", "demo", "`realm` served by the front doors whose paths name none (Fusio API, portal, gateway)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	smtpURL := fs.String("smtp-url", "", "outgoing mail server `URL` for activation links: smtp://user:pass@host:port?from=ADDRESS (or smtps://; or set "+smtpEnv+")")
	dev := fs.Bool("dev", false, "development mode: without --smtp-url, activation links are written to the log")
	rate := fs.Float64("rate-limit", 0, "requests per second per client address to the endpoints that check credentials (token, Fusio login, portal sign-in, _oidc_refresh; 0: off)")
	burst := fs.Int("rate-burst", 0, "token bucket size for --rate-limit (default: the rate)")
	rateLoop := fs.Bool("rate-limit-loopback", false, "apply --rate-limit to loopback addresses too")
	argonMem := fs.Uint("argon2-memory", uint(password.DefaultParams().Memory), "argon2id memory in `KiB` for new password hashes")
	argonIter := fs.Uint("argon2-iterations", uint(password.DefaultParams().Iterations), "argon2id iterations for new password hashes")
	var imports multiFlag
	fs.Var(&imports, "import-realm", "Keycloak realm-export `FILE` to import at start if its realm does not exist (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fromEnv(db, dbEnv)
	fromEnv(smtpURL, smtpEnv)
	setGCFloor()
	if fs.NArg() > 0 {
		return usageError{"unexpected argument " + fs.Arg(0)}
	}
	if *smtpURL != "" {
		if _, err := core.ParseSMTPURL(*smtpURL); err != nil {
			return usageError{"--smtp-url: " + err.Error()}
		}
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	start := time.Now()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	pp := password.DefaultParams()
	pp.Memory, pp.Iterations = uint32(*argonMem), uint32(*argonIter)
	public := *publicURL
	if public == "" {
		public = "http://" + ln.Addr().String()
	}
	ctx := context.Background()
	srv, err := server.Open(ctx, server.Config{
		Addr: ln.Addr().String(), DataDir: *data, DBURL: *db, MasterKeyFile: *masterKey,
		PublicURL: public, ImportRealms: imports, Demo: !*noDemo, Passwords: pp, DefaultRealm: *defaultRealm,
		RateLimit: *rate, RateBurst: *burst, RateLimitLoopback: *rateLoop,
		SMTPURL: *smtpURL, Dev: *dev,
		Logger: log, Out: stdout,
	})
	if err != nil {
		ln.Close()
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("gatehouse ready", "addr", ln.Addr().String(), "public_url", public, "data", *data,
		"startup_ms", time.Since(start).Milliseconds(), "rsa_signer", jwt.RSABackend())
	select {
	case err = <-done:
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err = srv.Close(sctx)
		<-done
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if cerr := srv.Close(sctx); err == nil {
		err = cerr
	}
	return err
}

// The environment can carry what holds a password, so that it is not in
// the process list for every local user to read (/proc/PID/cmdline), as a
// flag's value is.
const (
	dbEnv   = "GATEHOUSE_DB"
	smtpEnv = "GATEHOUSE_SMTP_URL"
)

// fromEnv fills an unset flag from the environment variable name.
func fromEnv(flagValue *string, name string) {
	if *flagValue == "" {
		*flagValue = os.Getenv(name)
	}
}

// storeFlags say where an admin command finds the data, as serve's flags
// of the same names do.
type storeFlags struct {
	data, db, masterKey *string
	dbFromEnv           bool // an unset --db may come from the environment
}

// addStoreFlags defines --data, --db and --master-key-file on fs.
func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		data:      fs.String("data", "./gatehouse-data", "data `DIR` (embedded SQLite database, master key)"),
		db:        fs.String("db", "", "PostgreSQL `URL` (default: embedded SQLite under --data; or set "+dbEnv+")"),
		masterKey: fs.String("master-key-file", "", "master key `FILE` (default DIR/master.key; or set "+keys.MasterKeyEnv+")"),
		dbFromEnv: true,
	}
}

// offline opens the SQLite store under data without listening.
func offline(data string, stderr io.Writer) (*server.Server, error) {
	var none string
	return storeFlags{data: &data, db: &none, masterKey: &none}.open(stderr)
}

// open opens the store the flags name without listening, for admin
// commands.
func (f storeFlags) open(stderr io.Writer) (*server.Server, error) {
	if f.dbFromEnv {
		fromEnv(f.db, dbEnv)
	}
	if *f.db != "" && os.Getenv(keys.MasterKeyEnv) == "" {
		// serve creates a missing key file on a first start; an admin
		// command against a shared database must not: signing keys it
		// created would be sealed with a key no replica has.
		file := *f.masterKey
		if file == "" {
			file = filepath.Join(*f.data, "master.key")
		}
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("no master key at %s: with --db, set %s or give --master-key-file, with the key the replicas use", file, keys.MasterKeyEnv)
		}
	}
	log, _ := newLogger(stderr, "warn")
	return server.Open(context.Background(), server.Config{
		DataDir: *f.data, DBURL: *f.db, MasterKeyFile: *f.masterKey, Logger: log,
	})
}

func importCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	loc := addStoreFlags(fs)
	overwrite := fs.Bool("overwrite", false, "replace the realm if it exists (its sessions end)")
	if err := fs.Parse(reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want exactly one realm-export FILE"}
	}
	file := fs.Arg(0)
	p, err := server.ParseRealmFile(file)
	if err != nil {
		return err
	}
	srv, err := loc.open(stderr)
	if err != nil {
		return err
	}
	defer srv.Close(context.Background())
	log, _ := newLogger(stderr, "warn")
	server.WarnUnknown(log, file, p)
	if err := srv.Core.ImportRealm(context.Background(), p, *overwrite); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("realm %q already exists (use --overwrite to replace it)", p.Realm.Name)
		}
		return fmt.Errorf("%s: %w", file, err)
	}
	fmt.Fprintf(stdout, "imported realm %q: %d clients, %d users\n", p.Realm.Name, len(p.Clients), len(p.Users))
	return nil
}

func exportCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	loc := addStoreFlags(fs)
	realm := fs.String("realm", "", "realm to export")
	out := fs.String("out", "", "write to `FILE` instead of standard output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *realm == "" {
		return usageError{"--realm is required"}
	}
	srv, err := loc.open(stderr)
	if err != nil {
		return err
	}
	defer srv.Close(context.Background())
	doc, err := srv.Core.ExportRealm(context.Background(), *realm)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("realm %q does not exist", *realm)
	}
	if err != nil {
		return err
	}
	doc = append(doc, '\n')
	if *out != "" {
		return os.WriteFile(*out, doc, 0o600)
	}
	_, err = stdout.Write(doc)
	return err
}

func keysCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return usageError{"usage: gatehouse keys rotate --realm R [--alg ALG]"}
	}
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	loc := addStoreFlags(fs)
	realm := fs.String("realm", "", "realm whose signing key to rotate")
	alg := fs.String("alg", "", "algorithm of the new key (default: the realm's)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *realm == "" {
		return usageError{"--realm is required"}
	}
	srv, err := loc.open(stderr)
	if err != nil {
		return err
	}
	defer srv.Close(context.Background())
	kid, err := srv.Core.RotateKeys(context.Background(), *realm, *alg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "realm %q now signs with key %s; the previous key stays in the JWKS until its tokens expire\n", *realm, kid)
	return nil
}

func usersCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "unlock" {
		return usageError{"usage: gatehouse users unlock --realm R --username U"}
	}
	fs := flag.NewFlagSet("users unlock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	loc := addStoreFlags(fs)
	realm := fs.String("realm", "", "realm of the user")
	username := fs.String("username", "", "user to unlock")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *realm == "" || *username == "" {
		return usageError{"--realm and --username are required"}
	}
	srv, err := loc.open(stderr)
	if err != nil {
		return err
	}
	defer srv.Close(context.Background())
	if err := srv.Core.Unlock(context.Background(), *realm, strings.ToLower(*username)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user %q in realm %q", *username, *realm)
		}
		return err
	}
	fmt.Fprintf(stdout, "user %q of realm %q unlocked\n", *username, *realm)
	return nil
}

// reorder moves flags before positional arguments, so that
// "import FILE --overwrite" works as well as "import --overwrite FILE".
func reorder(args []string) []string {
	// The flags that take a value: the word after one is its value, not
	// a positional argument.
	valueFlags := map[string]bool{"data": true, "db": true, "master-key-file": true}
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && valueFlags[strings.TrimLeft(a, "-")] && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}
