package core

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/jwt"
	"github.com/gatehouse/gatehouse/internal/store"
)

// ClientAuth is how a request says which client it comes from: HTTP Basic,
// client_id/client_secret in the form, a client assertion (RFC 7523), or a
// bare client_id for a public client. The front door fills it in; the core
// decides whether it holds.
type ClientAuth struct {
	ClientID string
	Secret   string
	// BasicID is the client id from an HTTP Basic header, when there was
	// one; it must agree with a client_id in the form.
	BasicID       string
	Basic         bool
	AssertionType string
	Assertion     string
}

// AssertionTypeJWTBearer is RFC 7523's client_assertion_type.
const AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLifetime bounds how far in the future an assertion's exp may
// be, so that a jti does not have to be remembered for long.
const maxAssertionLifetime = time.Hour

var errBadClient = errf(401, InvalidClient, "Invalid client or Invalid client credentials")

// authenticateClient returns the client a request authenticated as.
// Every failure for a confidential client looks the same to the caller.
// endpoint is the URL the request was sent to, an accepted assertion aud.
func (s *Service) authenticateClient(ctx context.Context, v *realmView, ca ClientAuth, endpoint string) (*store.Client, *Error) {
	if ca.Assertion != "" {
		return s.authenticateAssertion(ctx, v, ca, endpoint)
	}
	id := ca.ClientID
	if ca.Basic {
		if id != "" && id != ca.BasicID {
			return nil, errf(400, InvalidRequest, "Client id in the form does not match the Authorization header")
		}
		id = ca.BasicID
	}
	if id == "" {
		return nil, errf(400, InvalidClient, "Missing parameter: client_id")
	}
	c, err := s.client(ctx, v.r.Name, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return nil, s.internal("client lookup", err)
		}
		// Client ids are not secrets (they sit in every token's azp), so
		// an unknown one needs no decoy work; the answer is the same.
		return nil, errBadClient
	}
	if !c.Enabled {
		return nil, errBadClient
	}
	if c.Public {
		return c, nil
	}
	switch c.ClientAuthenticator {
	case "client-jwt", "client-secret-jwt":
		return nil, errf(401, InvalidClient, "Client authentication with signed JWT required")
	}
	if ca.Secret == "" {
		return nil, errf(401, InvalidClient, "Client secret not provided in request")
	}
	if !s.secrets.Equal(c.SecretHash, ca.Secret) {
		return nil, errBadClient
	}
	return c, nil
}

// assertionClaims are RFC 7523 §3's claims.
type assertionClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp int64           `json:"exp"`
	Nbf int64           `json:"nbf"`
	Iat int64           `json:"iat"`
	Jti string          `json:"jti"`
}

func (s *Service) authenticateAssertion(ctx context.Context, v *realmView, ca ClientAuth, endpoint string) (*store.Client, *Error) {
	fail := func(why string) *Error {
		return errf(401, InvalidClient, "Client authentication with signed JWT failed: "+why)
	}
	if ca.AssertionType != AssertionTypeJWTBearer {
		return nil, errf(400, InvalidRequest, "Unsupported client_assertion_type")
	}
	p, err := jwt.Parse(ca.Assertion)
	if err != nil {
		return nil, fail("malformed assertion")
	}
	var cl assertionClaims
	if err := json.Unmarshal(p.Payload, &cl); err != nil {
		return nil, fail("malformed claims")
	}
	if cl.Sub == "" || cl.Iss != cl.Sub {
		return nil, fail("iss and sub must both be the client id")
	}
	if ca.ClientID != "" && ca.ClientID != cl.Sub {
		return nil, fail("client_id does not match the assertion")
	}
	c, gerr := s.client(ctx, v.r.Name, cl.Sub)
	if gerr != nil || !c.Enabled || c.Public {
		return nil, errBadClient
	}
	switch c.ClientAuthenticator {
	case "client-jwt":
		if p.Header.Alg == "HS256" {
			return nil, fail("this client signs with a private key")
		}
		keys, kerr := s.clientKeys(ctx, c)
		if kerr != nil {
			return nil, fail("client keys unavailable")
		}
		ok := false
		for _, k := range keys {
			if k.Kid != "" && p.Header.Kid != "" && k.Kid != p.Header.Kid {
				continue
			}
			if k.Alg != "" && k.Alg != p.Header.Alg {
				continue
			}
			pub, perr := k.PublicKey()
			if perr != nil {
				continue
			}
			if jwt.Verify(p.Header.Alg, pub, p.SigningInput, p.Signature) == nil {
				ok = true
				break
			}
		}
		if !ok {
			return nil, fail("invalid signature")
		}
	case "client-secret-jwt":
		if p.Header.Alg != "HS256" {
			return nil, fail("this client signs with its secret (HS256)")
		}
		secret, oerr := s.keys.Open(c.SecretSealed)
		if oerr != nil || len(secret) == 0 {
			return nil, fail("client has no usable secret")
		}
		if jwt.Verify("HS256", secret, p.SigningInput, p.Signature) != nil {
			return nil, fail("invalid signature")
		}
	default:
		return nil, fail("client is not configured for signed JWT authentication")
	}
	now := s.now()
	if cl.Exp == 0 || now.Unix() >= cl.Exp {
		return nil, fail("assertion expired")
	}
	if time.Unix(cl.Exp, 0).Sub(now) > maxAssertionLifetime {
		return nil, fail("assertion expiry too far in the future")
	}
	if cl.Nbf != 0 && cl.Nbf > now.Unix()+5 {
		return nil, fail("assertion not yet valid")
	}
	if !audienceOK(cl.Aud, v.issuer, endpoint) {
		return nil, fail("invalid audience")
	}
	if cl.Jti == "" {
		return nil, fail("jti required")
	}
	if err := s.st.UseOnce(ctx, v.r.Name, "assertion\x00"+c.ClientID+"\x00"+cl.Jti, time.Unix(cl.Exp, 0)); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return nil, fail("assertion already used")
		}
		return nil, s.internal("assertion jti", err)
	}
	return c, nil
}

// audienceOK accepts the realm issuer or the endpoint URL the assertion
// was sent to (Keycloak accepts both), as a string or in an array.
func audienceOK(raw json.RawMessage, issuer, endpoint string) bool {
	var one string
	var many []string
	if json.Unmarshal(raw, &one) == nil {
		many = []string{one}
	} else if json.Unmarshal(raw, &many) != nil {
		return false
	}
	for _, a := range many {
		a = strings.TrimRight(a, "/")
		if a == issuer || (endpoint != "" && a == endpoint) || a == issuer+"/protocol/openid-connect/token" {
			return true
		}
	}
	return false
}

type jwksCacheEntry struct {
	keys    []jwt.JWK
	fetched time.Time
}

// jwksTTL is how long a client's jwks.url document is trusted.
const jwksTTL = 5 * time.Minute

func (s *Service) clientKeys(ctx context.Context, c *store.Client) ([]jwt.JWK, error) {
	if len(c.JWKS) > 0 {
		set, err := jwt.ParseJWKS(c.JWKS)
		return set.Keys, err
	}
	url := c.Attributes["jwks.url"]
	if url == "" || s.httpGet == nil {
		return nil, errors.New("no keys")
	}
	k := key2(c.Realm, c.ClientID)
	s.mu.RLock()
	e, ok := s.jwksURL[k]
	s.mu.RUnlock()
	if ok && s.now().Sub(e.fetched) < jwksTTL {
		return e.keys, nil
	}
	body, err := s.httpGet(ctx, url)
	if err != nil {
		return nil, err
	}
	set, err := jwt.ParseJWKS(body)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.jwksURL[k] = jwksCacheEntry{keys: set.Keys, fetched: s.now()}
	s.mu.Unlock()
	return set.Keys, nil
}

// internal logs an unexpected failure (never with request secrets) and
// gives the client an opaque 500-class answer; only store or key failures
// reach it, never anything the client sent.
func (s *Service) internal(what string, err error) *Error {
	s.log.Error("internal error", "op", what, "err", err)
	return errf(500, ServerError, "internal error")
}
