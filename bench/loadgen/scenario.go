package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// scenario is one kind of request and the rule that decides whether its
// answer is a success.
type scenario struct {
	// targeter fills in the next request; vegeta calls it from many
	// goroutines at once.
	targeter vegeta.Targeter
	// handle judges one finished request and does any bookkeeping the
	// scenario needs (the refresh scenario hands the chain's new token back).
	// It sees every result, warm-up included, and must be safe for
	// concurrent use. A non-nil error means the request failed.
	handle func(res *vegeta.Result) error
	// close stops background work (re-logins of broken refresh chains).
	close func()
}

// maxBody bounds how much of any response is read; token responses are a
// few KiB, and a misbehaving server must not exhaust the generator's memory.
const maxBody = 1 << 20

// errSample is the shortest form of an error body kept for the report.
const errSample = 200

// tokenResponse is the part of a Keycloak token response the scenarios use.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// endpoints holds the URLs of one realm's Keycloak-style paths.
type endpoints struct {
	token, introspect, userinfo string
}

// realmEndpoints are Keycloak's paths of cfg.realm, except where -token-path
// or -introspect-path names another server's (oidc-provider's /token).
func realmEndpoints(cfg config) endpoints {
	base := cfg.baseURL + "/realms/" + url.PathEscape(cfg.realm) + "/protocol/openid-connect"
	ep := endpoints{token: base + "/token", introspect: base + "/token/introspect", userinfo: base + "/userinfo"}
	if cfg.tokenPath != "" {
		ep.token = cfg.baseURL + cfg.tokenPath
	}
	if cfg.introPath != "" {
		ep.introspect = cfg.baseURL + cfg.introPath
	}
	return ep
}

// statusError turns a non-success answer into an error whose text is safe
// to print: status code plus the start of the body on one line.
func statusError(code int, body []byte) error {
	b := body
	if len(b) > errSample {
		b = b[:errSample]
	}
	s := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(b), "?"))
	return fmt.Errorf("HTTP %d: %s", code, s)
}

// resultError reports why a vegeta result is not a success at the HTTP
// level: a transport failure, a targeter failure or a status other than
// 200/204. It does not look at the body beyond quoting it.
func resultError(res *vegeta.Result) error {
	if res.Code == 0 {
		if res.Error == "" {
			return errors.New("no response")
		}
		return errors.New(res.Error)
	}
	if res.Code != http.StatusOK && res.Code != http.StatusNoContent {
		return statusError(int(res.Code), res.Body)
	}
	return nil
}

// checkToken decides whether a token endpoint answered with a usable token.
// needRefresh also demands a refresh_token (the refresh scenario cannot go on
// without one).
func checkToken(code int, body []byte, needRefresh bool) (tokenResponse, error) {
	var tr tokenResponse
	if code != http.StatusOK {
		return tr, statusError(code, body)
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		// The body is not quoted: a 200 may hold credentials.
		return tr, fmt.Errorf("HTTP 200 with a body that is not a token response (%d bytes)", len(body))
	}
	if tr.AccessToken == "" {
		return tr, errors.New("HTTP 200 without access_token")
	}
	if needRefresh && tr.RefreshToken == "" {
		return tr, errors.New("HTTP 200 without refresh_token")
	}
	return tr, nil
}

// checkIntrospect accepts only an active token: an introspection that says
// "inactive" is fast and useless, and must not count as a success.
func checkIntrospect(code int, body []byte) error {
	if code != http.StatusOK {
		return statusError(code, body)
	}
	var r struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("HTTP 200 with a body that is not an introspection response (%d bytes)", len(body))
	}
	if !r.Active {
		return errors.New(`HTTP 200 without "active": true`)
	}
	return nil
}

// checkUserinfo accepts a JSON object naming a subject, which every OIDC
// userinfo answer must carry.
func checkUserinfo(code int, body []byte) error {
	if code != http.StatusOK {
		return statusError(code, body)
	}
	var r struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("HTTP 200 with a body that is not a userinfo response (%d bytes)", len(body))
	}
	if r.Sub == "" {
		return errors.New("HTTP 200 without sub")
	}
	return nil
}

// checkFusioLogin accepts a Fusio login answer carrying a token.
func checkFusioLogin(code int, body []byte) error {
	if code != http.StatusOK {
		return statusError(code, body)
	}
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("HTTP 200 with a body that is not a login response (%d bytes)", len(body))
	}
	if r.Token == "" {
		return errors.New("HTTP 200 without token")
	}
	return nil
}

// userNames returns the user names logins rotate over.
func userNames(cfg config) []string {
	if cfg.users == 0 {
		return []string{cfg.username}
	}
	names := make([]string, cfg.users)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", cfg.userPrefix, i+1)
	}
	return names
}

// clientAuth adds the client's credentials to form and hdr, as form fields
// or as HTTP Basic (with the RFC 6749 §2.3.1 form-encoding Keycloak expects).
func clientAuth(cfg config, form url.Values, hdr http.Header) {
	if cfg.basicAuth && cfg.clientSecret != "" {
		cred := url.QueryEscape(cfg.clientID) + ":" + url.QueryEscape(cfg.clientSecret)
		hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
		return
	}
	form.Set("client_id", cfg.clientID)
	if cfg.clientSecret != "" {
		form.Set("client_secret", cfg.clientSecret)
	}
}

func formHeader() http.Header {
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
}

// passwordForms builds one password-grant request body per user up front,
// so the targeter only picks one.
func passwordForms(cfg config) ([][]byte, http.Header) {
	hdr := formHeader()
	var bodies [][]byte
	for _, u := range userNames(cfg) {
		form := url.Values{"grant_type": {"password"}, "username": {u}, "password": {cfg.password}}
		clientAuth(cfg, form, hdr)
		bodies = append(bodies, []byte(form.Encode()))
	}
	return bodies, hdr
}

// client is the HTTP side of the setup requests (logins before and during a
// run), sharing the attack's transport.
type client struct {
	http *http.Client
	cfg  config
	ep   endpoints
	next atomic.Uint64 // which user logs in next
}

// postToken sends one token request and returns the checked response.
func (c *client) postToken(ctx context.Context, body []byte, hdr http.Header, needRefresh bool) (tokenResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ep.token, bytes.NewReader(body))
	if err != nil {
		return tokenResponse{}, err
	}
	req.Header = hdr.Clone()
	resp, err := c.http.Do(req)
	if err != nil {
		return tokenResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return tokenResponse{}, err
	}
	return checkToken(resp.StatusCode, b, needRefresh)
}

// login runs one password grant for the next user in turn.
func (c *client) login(ctx context.Context, needRefresh bool) (tokenResponse, error) {
	bodies, hdr := passwordForms(c.cfg)
	i := c.next.Add(1) - 1
	return c.postToken(ctx, bodies[i%uint64(len(bodies))], hdr, needRefresh)
}

// clientCredentials runs one client-credentials grant.
func (c *client) clientCredentials(ctx context.Context) (tokenResponse, error) {
	hdr := formHeader()
	form := url.Values{"grant_type": {"client_credentials"}}
	clientAuth(c.cfg, form, hdr)
	return c.postToken(ctx, []byte(form.Encode()), hdr, false)
}

// oneToken obtains the access token that the introspect, userinfo and
// bearer-get scenarios reuse for the whole run.
func (c *client) oneToken(ctx context.Context) (string, error) {
	var tr tokenResponse
	var err error
	if c.cfg.tokenGrant == "password" {
		tr, err = c.login(ctx, false)
	} else {
		tr, err = c.clientCredentials(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("obtaining the token to reuse (%s grant): %w", c.cfg.tokenGrant, err)
	}
	return tr.AccessToken, nil
}

// cycle returns a targeter-safe round-robin picker over n items.
func cycle(n int) func() int {
	var i atomic.Uint64
	return func() int { return int((i.Add(1) - 1) % uint64(n)) }
}

// fixed returns a targeter that sends the same request every time.
func fixed(method, u string, hdr http.Header, body []byte) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header, t.Body = method, u, hdr, body
		return nil
	}
}

// newScenario builds the scenario cfg names, doing its setup requests
// (the token to reuse, the refresh chains' first logins) with c.
func newScenario(ctx context.Context, cfg config, c *client) (*scenario, error) {
	ep := c.ep
	noop := func() {}
	switch cfg.scenario {
	case "password":
		bodies, hdr := passwordForms(cfg)
		pick := cycle(len(bodies))
		return &scenario{
			targeter: func(t *vegeta.Target) error {
				t.Method, t.URL, t.Header, t.Body = http.MethodPost, ep.token, hdr, bodies[pick()]
				return nil
			},
			handle: tokenHandler(false),
			close:  noop,
		}, nil

	case "client_credentials":
		hdr := formHeader()
		form := url.Values{"grant_type": {"client_credentials"}}
		clientAuth(cfg, form, hdr)
		return &scenario{
			targeter: fixed(http.MethodPost, ep.token, hdr, []byte(form.Encode())),
			handle:   tokenHandler(false),
			close:    noop,
		}, nil

	case "refresh":
		return newRefreshScenario(ctx, cfg, c)

	case "introspect":
		tok, err := c.oneToken(ctx)
		if err != nil {
			return nil, err
		}
		hdr := formHeader()
		form := url.Values{"token": {tok}}
		clientAuth(cfg, form, hdr)
		return &scenario{
			targeter: fixed(http.MethodPost, ep.introspect, hdr, []byte(form.Encode())),
			handle:   bodyHandler(checkIntrospect),
			close:    noop,
		}, nil

	case "userinfo":
		tok, err := c.oneToken(ctx)
		if err != nil {
			return nil, err
		}
		hdr := http.Header{"Authorization": {"Bearer " + tok}}
		return &scenario{
			targeter: fixed(http.MethodGet, ep.userinfo, hdr, nil),
			handle:   bodyHandler(checkUserinfo),
			close:    noop,
		}, nil

	case "get":
		hdr := cfg.headers.Clone()
		if cfg.bearer {
			tok, err := c.oneToken(ctx)
			if err != nil {
				return nil, err
			}
			hdr.Set("Authorization", "Bearer "+tok)
		}
		return &scenario{
			targeter: fixed(http.MethodGet, cfg.baseURL+cfg.path, hdr, nil),
			handle:   func(res *vegeta.Result) error { return resultError(res) },
			close:    noop,
		}, nil

	case "fusio_login":
		hdr := http.Header{"Content-Type": {"application/json"}}
		var bodies [][]byte
		for _, u := range userNames(cfg) {
			b, err := json.Marshal(map[string]string{"username": u, "password": cfg.password})
			if err != nil {
				return nil, err
			}
			bodies = append(bodies, b)
		}
		pick := cycle(len(bodies))
		u := cfg.baseURL + "/consumer/login"
		return &scenario{
			targeter: func(t *vegeta.Target) error {
				t.Method, t.URL, t.Header, t.Body = http.MethodPost, u, hdr, bodies[pick()]
				return nil
			},
			handle: bodyHandler(checkFusioLogin),
			close:  noop,
		}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q", cfg.scenario)
}

// bodyHandler adapts a status-and-body check to a result handler.
func bodyHandler(check func(code int, body []byte) error) func(*vegeta.Result) error {
	return func(res *vegeta.Result) error {
		if res.Code == 0 {
			return resultError(res)
		}
		return check(int(res.Code), res.Body)
	}
}

func tokenHandler(needRefresh bool) func(*vegeta.Result) error {
	return bodyHandler(func(code int, body []byte) error {
		_, err := checkToken(code, body, needRefresh)
		return err
	})
}

// refreshChains holds the newest refresh token of every chain not in flight.
//
// vegeta's targeter cannot see the results of earlier requests, so the
// chains are not tied to a worker: a request takes whichever chain is idle,
// and the result handler puts the chain back with the refresh token from the
// response. A chain is therefore in at most one request at a time and always
// continues with the newest token it was given. A chain whose refresh
// failed (its token may or may not have been consumed) is dropped and
// replaced by a fresh login, which is not itself measured.
type refreshChains struct {
	idle     chan string
	c        *client
	ctx      context.Context
	cancel   context.CancelFunc
	relogins atomic.Int64

	mu     sync.Mutex // guards closed and additions to wg
	closed bool
	wg     sync.WaitGroup
}

// take waits for an idle chain. Waiting counts towards the request's latency.
func (p *refreshChains) take() (string, error) {
	select {
	case tok := <-p.idle:
		return tok, nil
	case <-p.ctx.Done():
		return "", errors.New("no refresh chain available: re-login did not succeed before the run ended")
	}
}

// put returns a chain. idle holds one slot per chain, so this never blocks.
func (p *refreshChains) put(tok string) { p.idle <- tok }

// replace starts a new chain in place of a broken one, retrying the login
// until it works or the run ends.
func (p *refreshChains) replace() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.relogins.Add(1)
	p.wg.Go(func() {
		for {
			tr, err := p.c.login(p.ctx, true)
			if err == nil {
				p.put(tr.RefreshToken)
				return
			}
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// close ends the re-logins and waits for them; it may be called more than once.
func (p *refreshChains) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

func newRefreshScenario(ctx context.Context, cfg config, c *client) (*scenario, error) {
	// The chains outlive ctx only until close: a blocked targeter must give
	// up when the run is over.
	cctx, cancel := context.WithCancel(ctx)
	p := &refreshChains{idle: make(chan string, cfg.conns), c: c, ctx: cctx, cancel: cancel}
	for i := range cfg.conns {
		tr, err := c.login(ctx, true)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("login %d of %d for the refresh chains: %w", i+1, cfg.conns, err)
		}
		p.put(tr.RefreshToken)
	}
	hdr := formHeader()
	base := url.Values{"grant_type": {"refresh_token"}}
	clientAuth(cfg, base, hdr)
	prefix := base.Encode() + "&refresh_token="
	handle := func(res *vegeta.Result) error {
		if res.Code == 0 && strings.HasPrefix(res.Error, "no refresh chain") {
			// The targeter failed: no chain was taken, none to give back.
			return errors.New(res.Error)
		}
		if res.Code == 0 {
			p.replace()
			return resultError(res)
		}
		tr, err := checkToken(int(res.Code), res.Body, true)
		if err != nil {
			p.replace()
			return err
		}
		p.put(tr.RefreshToken)
		return nil
	}
	return &scenario{
		targeter: func(t *vegeta.Target) error {
			tok, err := p.take()
			if err != nil {
				return err
			}
			t.Method, t.URL, t.Header = http.MethodPost, c.ep.token, hdr
			t.Body = []byte(prefix + url.QueryEscape(tok))
			return nil
		},
		handle: handle,
		close:  p.close,
	}, nil
}
