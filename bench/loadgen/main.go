// Command loadgen drives load at a running gatehouse (or any Keycloak-style
// token server, gateway or upstream) from a separate process, and prints one
// JSON object with throughput and latency percentiles.
//
// It runs either closed-loop (-rate 0: -c connections, each sending its next
// request as soon as the previous one is answered) or open-loop (-rate N: N
// requests per second whatever the server does, latency measured from the
// moment each request was due, so a server that falls behind shows it in its
// percentiles instead of hiding it by slowing the client down).
//
// Every response is checked; a request only counts as a success when the
// status is 200/204 and, for token scenarios, the body carries what the
// scenario needs (an access_token, a new refresh_token, "active": true, ...).
//
// See bench/README.md for how to run it and how to read the numbers.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"
)

// config is everything one run needs, filled from the command line.
type config struct {
	baseURL      string
	realm        string
	tokenPath    string
	introPath    string
	scenario     string
	path         string
	clientID     string
	clientSecret string
	basicAuth    bool
	username     string
	password     string
	users        int
	userPrefix   string
	tokenGrant   string
	bearer       bool
	headers      http.Header
	conns        int
	rate         int
	duration     time.Duration
	warmup       time.Duration
	timeout      time.Duration
	maxWorkers   int
	transport    string
}

// scenarioNames lists what -scenario accepts, in the order the usage shows.
var scenarioNames = []string{"password", "client_credentials", "refresh", "introspect", "userinfo", "get", "fusio_login"}

// headerFlag collects repeated -header k:v flags.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string { return "" }

func (f *headerFlag) Set(s string) error {
	k, v, err := parseHeader(s)
	if err != nil {
		return err
	}
	f.h.Add(k, v)
	return nil
}

// parseHeader splits "Name: value" at the first colon. The value may itself
// contain colons (URLs, times), the name may not.
func parseHeader(s string) (string, string, error) {
	k, v, ok := strings.Cut(s, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return "", "", fmt.Errorf("header %q: want Name:value", s)
	}
	for _, r := range k {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return "", "", fmt.Errorf("header name %q: invalid character %q", k, r)
		}
	}
	v = strings.TrimSpace(v)
	if strings.ContainsAny(v, "\r\n\x00") {
		return "", "", fmt.Errorf("header %q: value contains a control character", k)
	}
	return http.CanonicalHeaderKey(k), v, nil
}

// parseFlags reads args (without the program name) into a config.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{headers: http.Header{}}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.baseURL, "url", "http://127.0.0.1:8080", "base URL of the server")
	fs.StringVar(&cfg.realm, "realm", "master", "realm name for the Keycloak-style paths")
	fs.StringVar(&cfg.tokenPath, "token-path", "", "token endpoint path appended to -url, for servers without Keycloak's paths (oidc-provider: /token); default /realms/R/protocol/openid-connect/token")
	fs.StringVar(&cfg.introPath, "introspect-path", "", "introspection endpoint path appended to -url (oidc-provider: /token/introspection); default the Keycloak path of -realm")
	fs.StringVar(&cfg.scenario, "scenario", "client_credentials", "one of "+strings.Join(scenarioNames, " | "))
	fs.StringVar(&cfg.path, "path", "/", "for -scenario get: path appended to -url")
	fs.StringVar(&cfg.clientID, "client-id", "", "OAuth client id")
	fs.StringVar(&cfg.clientSecret, "client-secret", "", "OAuth client secret (empty for a public client)")
	fs.BoolVar(&cfg.basicAuth, "basic", false, "send client credentials with HTTP Basic instead of form fields")
	fs.StringVar(&cfg.username, "username", "", "user name for password logins (ignored when -users > 0)")
	fs.StringVar(&cfg.password, "password", "", "user password")
	fs.IntVar(&cfg.users, "users", 0, "spread logins over <prefix>1..<prefix>N, all with -password")
	fs.StringVar(&cfg.userPrefix, "user-prefix", "user", "user name prefix for -users")
	fs.StringVar(&cfg.tokenGrant, "token-grant", "auto", "introspect/userinfo/get -bearer: how to get the one token reused (password | client_credentials | auto)")
	fs.BoolVar(&cfg.bearer, "bearer", false, "for -scenario get: obtain a token up front and send it as Authorization: Bearer")
	hf := &headerFlag{h: cfg.headers}
	fs.Var(hf, "header", "for -scenario get: extra request header Name:value (repeatable)")
	fs.IntVar(&cfg.conns, "c", 16, "connections (closed loop: also the number of requests in flight)")
	fs.IntVar(&cfg.rate, "rate", 0, "requests per second, open loop; 0 = closed loop")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "load before the measurement starts, not counted")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.IntVar(&cfg.maxWorkers, "max-inflight", 10000, "open loop: most requests in flight or queued for a connection at once")
	fs.StringVar(&cfg.transport, "transport", "sync", "HTTP client: sync (one goroutine per round trip, http:// only; https:// falls back to std) | std (net/http's Transport)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return cfg, cfg.validate()
}

// validate rejects configurations that would produce a meaningless number
// rather than an error, before any load is sent.
func (c *config) validate() error {
	c.baseURL = strings.TrimRight(c.baseURL, "/")
	switch {
	case !strings.HasPrefix(c.baseURL, "http://") && !strings.HasPrefix(c.baseURL, "https://"):
		return fmt.Errorf("-url %q: want http:// or https://", c.baseURL)
	case c.conns < 1:
		return errors.New("-c must be at least 1")
	case c.rate < 0:
		return errors.New("-rate must not be negative")
	case c.duration <= 0:
		return errors.New("-duration must be positive")
	case c.warmup < 0:
		return errors.New("-warmup must not be negative")
	case c.timeout <= 0:
		return errors.New("-timeout must be positive")
	case c.users < 0:
		return errors.New("-users must not be negative")
	case c.maxWorkers < c.conns:
		return errors.New("-max-inflight must be at least -c")
	case c.transport != "sync" && c.transport != "std":
		return fmt.Errorf("-transport %q: want sync or std", c.transport)
	}
	known := false
	for _, n := range scenarioNames {
		known = known || n == c.scenario
	}
	if !known {
		return fmt.Errorf("-scenario %q: want one of %s", c.scenario, strings.Join(scenarioNames, ", "))
	}
	switch c.tokenGrant {
	case "auto":
		c.tokenGrant = "client_credentials"
		if c.username != "" || c.users > 0 {
			c.tokenGrant = "password"
		}
	case "password", "client_credentials":
	default:
		return fmt.Errorf("-token-grant %q: want password, client_credentials or auto", c.tokenGrant)
	}
	needsUser := c.scenario == "password" || c.scenario == "refresh" || c.scenario == "fusio_login" ||
		((c.scenario == "introspect" || c.scenario == "userinfo" || (c.scenario == "get" && c.bearer)) && c.tokenGrant == "password")
	if needsUser && c.username == "" && c.users == 0 {
		return fmt.Errorf("-scenario %s needs -username or -users", c.scenario)
	}
	if c.scenario != "fusio_login" && c.scenario != "get" && c.clientID == "" {
		return fmt.Errorf("-scenario %s needs -client-id", c.scenario)
	}
	if c.scenario == "get" && c.bearer && c.clientID == "" {
		return errors.New("-bearer needs -client-id")
	}
	if c.tokenPath != "" && !strings.HasPrefix(c.tokenPath, "/") {
		return fmt.Errorf("-token-path %q: want a path starting with /", c.tokenPath)
	}
	if c.introPath != "" && !strings.HasPrefix(c.introPath, "/") {
		return fmt.Errorf("-introspect-path %q: want a path starting with /", c.introPath)
	}
	if c.scenario == "get" && !strings.HasPrefix(c.path, "/") {
		return fmt.Errorf("-path %q: want a path starting with /", c.path)
	}
	return nil
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain returns the exit status: 0 for a clean run, 1 when the run could
// not be set up, 2 for bad flags, 3 when any request failed (the JSON is still
// printed, so a script can keep it but cannot mistake it for a clean result).
func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "loadgen:", err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	rep, err := run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	fmt.Fprintln(stderr, rep.humanLine())
	for _, s := range rep.ErrorSamples {
		fmt.Fprintln(stderr, "  error:", s)
	}
	if rep.Errors > 0 {
		return 3
	}
	return 0
}
