package core

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Registration is a self-registration request from a developer portal.
type Registration struct {
	Realm     string
	Username  string
	Email     string
	Password  string
	FirstName string
	LastName  string
}

// DeliverActivation sends a new user the token that activates the account
// (by mail, or to the log in development). It is called after the user is
// stored; an error removes the user again, so that the address can try
// once more.
type DeliverActivation func(ctx context.Context, u store.User, token string) error

// ActivationTTL is how long an activation token is good for.
const ActivationTTL = 24 * time.Hour

// actionVerifyEmail is Keycloak's required action; while set, the user
// cannot log in.
const actionVerifyEmail = "VERIFY_EMAIL"

// attrActivation holds the keyed hash of the activation token and its
// expiry ("<base64 hash> <unix seconds>"): the token itself is never
// stored.
const attrActivation = "gatehouse.activation"

// emailClaimTTL keeps two registrations of one address apart: the store
// does not make emails unique, so a registration claims the address with
// UseOnce, which is one-winner on every replica, just before it stores the
// user. Once the user is stored, the lookup by email finds it, so the claim
// only has to outlive that gap; it is measured on the wall clock, as the
// store's expiry is.
const emailClaimTTL = 10 * time.Second

// Register creates a user through self-registration, if the realm allows
// it: the username is free, the email valid and free, the password passes
// the realm's policy. The user gets the realm's default roles (or, in a
// realm without any, its "Consumer" role, Fusio's default). With the
// realm's verifyEmail on, the user cannot log in until Activate is called
// with the token that deliver was given; without deliver, such a
// registration is refused before anything is stored.
func (s *Service) Register(ctx context.Context, r Registration, deliver DeliverActivation) (store.User, error) {
	u, e := s.register(ctx, r, deliver)
	if e != nil {
		return store.User{}, e
	}
	return u, nil
}

func (s *Service) register(ctx context.Context, r Registration, deliver DeliverActivation) (store.User, *Error) {
	v, e := s.activeRealm(ctx, r.Realm)
	if e != nil {
		return store.User{}, e
	}
	st := v.r.Settings
	if !st.RegistrationAllowed {
		return store.User{}, errf(403, AccessDenied, "Registration is not allowed")
	}
	username := strings.ToLower(strings.TrimSpace(r.Username))
	if !validUsername(username) {
		return store.User{}, errf(400, InvalidRequest, "Invalid name: use 3 to 32 letters, digits, '-', '_' or '.'")
	}
	email, ok := validEmail(r.Email)
	if !ok {
		return store.User{}, errf(400, InvalidRequest, "Invalid email address")
	}
	if len(r.FirstName) > 255 || len(r.LastName) > 255 {
		return store.User{}, errf(400, InvalidRequest, "Name too long")
	}
	if e := v.checkPasswordPolicy(username, email, r.Password); e != nil {
		return store.User{}, e
	}
	if st.VerifyEmail && deliver == nil {
		return store.User{}, errf(503, "temporarily_unavailable",
			"Registration needs email activation in this realm, but no mail server is configured")
	}
	if _, err := s.st.GetUserByUsername(ctx, v.r.Name, username); err == nil {
		return store.User{}, errf(409, "conflict", "User already exists")
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, s.internal("user lookup", err)
	}
	if _, err := s.st.GetUserByEmail(ctx, v.r.Name, email); err == nil {
		return store.User{}, errf(409, "conflict", "Email already registered")
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, s.internal("user lookup", err)
	}
	hash, err := s.pw.Hash(r.Password)
	if err != nil {
		return store.User{}, s.internal("hash password", err)
	}
	now := s.now().UTC()
	if err := s.st.UseOnce(ctx, v.r.Name, "register-email\x00"+email, time.Now().Add(emailClaimTTL)); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return store.User{}, errf(409, "conflict", "Email already registered")
		}
		return store.User{}, s.internal("email claim", err)
	}
	u := store.User{
		Realm:           v.r.Name,
		ID:              newID(),
		Username:        username,
		Email:           email,
		FirstName:       strings.TrimSpace(r.FirstName),
		LastName:        strings.TrimSpace(r.LastName),
		Enabled:         true,
		EmailVerified:   !st.VerifyEmail,
		Created:         now,
		PasswordHash:    hash,
		PasswordCreated: now,
		RealmRoles:      v.newUserRoles(),
	}
	var token string
	if st.VerifyEmail {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return store.User{}, s.internal("activation token", err)
		}
		token = u.ID + "." + base64.RawURLEncoding.EncodeToString(secret)
		u.RequiredActions = []string{actionVerifyEmail}
		u.Attributes = map[string][]string{attrActivation: {
			base64.StdEncoding.EncodeToString(s.secrets.Hash(token)) + " " + strconv.FormatInt(now.Add(ActivationTTL).Unix(), 10),
		}}
	}
	if err := s.st.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrAlreadyExists) {
			return store.User{}, errf(409, "conflict", "User already exists")
		}
		return store.User{}, s.internal("create user", err)
	}
	if st.VerifyEmail {
		if err := deliver(ctx, u, token); err != nil {
			s.log.Warn("activation could not be delivered; registration undone", "realm", v.r.Name, "user", u.ID, "err", err)
			if derr := s.st.DeleteUser(ctx, v.r.Name, u.ID); derr != nil {
				s.log.Warn("removing undelivered registration", "realm", v.r.Name, "user", u.ID, "err", derr)
			}
			return store.User{}, errf(503, "temporarily_unavailable", "The activation mail could not be sent; please try again later")
		}
	}
	return u, nil
}

// newUserRoles are the realm roles a registered user gets: the realm's
// default roles, or Fusio's "Consumer" where the realm names none.
func (v *realmView) newUserRoles() []string {
	if d := v.r.Settings.DefaultRoles; len(d) > 0 {
		return append([]string(nil), d...)
	}
	if _, ok := v.roles["Consumer"]; ok {
		return []string{"Consumer"}
	}
	return nil
}

func validUsername(s string) bool {
	if len(s) < 3 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.') {
			return false
		}
	}
	return true
}

// validEmail accepts a bare address (no display name) and lowercases it,
// as the store matches emails exactly.
func validEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", false
	}
	return strings.ToLower(s), true
}

var errBadActivation = errf(400, InvalidGrant, "Invalid or expired activation token")

// Activate completes a registration with the token the user was sent. A
// token works once and for ActivationTTL; the check and the clearing
// happen in one store transaction, so two uses race to one winner.
func (s *Service) Activate(ctx context.Context, realm, token string) error {
	if e := s.activate(ctx, realm, token); e != nil {
		return e
	}
	return nil
}

func (s *Service) activate(ctx context.Context, realm, token string) *Error {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return e
	}
	userID, _, ok := strings.Cut(token, ".")
	if !ok || userID == "" || len(token) > 200 {
		s.secrets.Equal(nil, token)
		return errBadActivation
	}
	now := s.now()
	err := s.st.UpdateUser(ctx, v.r.Name, userID, func(cur store.User) (store.User, error) {
		vals := cur.Attributes[attrActivation]
		if len(vals) != 1 {
			return cur, errBadActivation
		}
		h64, exp, _ := strings.Cut(vals[0], " ")
		hash, herr := base64.StdEncoding.DecodeString(h64)
		sec, terr := strconv.ParseInt(exp, 10, 64)
		if herr != nil || terr != nil || !s.secrets.Equal(hash, token) {
			return cur, errBadActivation
		}
		if !now.Before(time.Unix(sec, 0)) {
			return cur, errf(400, InvalidGrant, "Activation token expired")
		}
		cur.Attributes = cloneAttrs(cur.Attributes)
		delete(cur.Attributes, attrActivation)
		var ra []string
		for _, a := range cur.RequiredActions {
			if a != actionVerifyEmail {
				ra = append(ra, a)
			}
		}
		cur.RequiredActions = ra
		cur.EmailVerified = true
		return cur, nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errBadActivation
		}
		return s.asError("activate", err)
	}
	return nil
}
