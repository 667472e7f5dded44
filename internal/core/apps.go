package core

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/password"
	"github.com/gatehouse/gatehouse/internal/store"
)

// DefaultMaxAppsPerUser is Fusio's default limit of apps per developer,
// used when the realm sets none.
const DefaultMaxAppsPerUser = 16

// attrAppSlots is the user attribute that reserves app slots. The limit of
// apps per user is decided inside UpdateUser, the one transaction that
// locks the user's row, so two parallel creations on two replicas cannot
// both take the last slot. Each value is "<clientId> <unix seconds>".
const attrAppSlots = "gatehouse.appSlots"

// slotGrace is how long a reservation counts without its app being seen in
// the store: long enough for the CreateClient that follows it, short
// enough that an app deleted behind the portal's back frees its slot.
const slotGrace = time.Minute

// portalClient returns the realm's PortalClientID client, creating it
// on first use (EnsurePortalClient).
func (s *Service) portalClient(ctx context.Context, v *realmView) (*store.Client, *Error) {
	if err := s.EnsurePortalClient(ctx, v.r.Name); err != nil {
		return nil, s.internal("portal client", err)
	}
	c, err := s.client(ctx, v.r.Name, PortalClientID)
	if err != nil {
		return nil, s.internal("portal client", err)
	}
	if !c.Enabled {
		return nil, errf(401, InvalidClient, "The portal client is disabled")
	}
	return c, nil
}

// UserScopes returns the API scopes a user's roles grant (the "scopes"
// attribute of every realm and client role the user holds, composites and
// default roles included), sorted.
func (s *Service) UserScopes(ctx context.Context, realm, userID string) ([]string, error) {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return nil, e
	}
	u, err := s.user(ctx, realm, userID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errf(404, NotFound, "User not found")
		}
		return nil, s.internal("user lookup", err)
	}
	return v.roleScopes(u), nil
}

// roleScopes is Fusio's model: a role grants the scopes listed in its
// "scopes" attribute (several values, or one separated by spaces or
// commas).
func (v *realmView) roleScopes(u *store.User) []string {
	realmRoles, clientRoles := v.expandRoles(u)
	var out []string
	add := func(r *store.Role) {
		for _, val := range r.Attributes["scopes"] {
			out = appendUnique(out, SplitScopes(val)...)
		}
	}
	for _, name := range realmRoles {
		if r, ok := v.roles[name]; ok {
			add(r)
		}
	}
	for cid, names := range clientRoles {
		for _, n := range names {
			if r, ok := v.roles[cid+"/"+n]; ok {
				add(r)
			}
		}
	}
	sort.Strings(out)
	return out
}

// SplitScopes splits a scope list written with spaces (OAuth) or commas
// (Fusio), dropping empty entries and duplicates.
func SplitScopes(s string) []string {
	return appendUnique(nil, strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == ',' || r == '\t' || r == '\n' || r == '\r'
	})...)
}

func appendUnique(out []string, xs ...string) []string {
	for _, x := range xs {
		if !hasString(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// validAppName accepts what Fusio's portal accepts and nothing that would
// be awkward in a log line or a listing.
func validAppName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// CreateApp creates an app for a developer: a confidential client whose
// client_credentials grant acts as its owner, limited to scopes (kept only
// where the owner's roles grant them, as Fusio does; none left is an
// error). It returns the client and its secret, which is not stored and
// cannot be shown again. The realm's maxAppsPerUser (default 16) caps the
// apps of one owner.
func (s *Service) CreateApp(ctx context.Context, realm, ownerUserID, name string, scopes []string) (store.Client, string, error) {
	c, secret, e := s.createApp(ctx, realm, ownerUserID, name, scopes)
	if e != nil {
		return store.Client{}, "", e
	}
	return c, secret, nil
}

func (s *Service) createApp(ctx context.Context, realm, ownerUserID, name string, scopes []string) (store.Client, string, *Error) {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return store.Client{}, "", e
	}
	name = strings.TrimSpace(name)
	if !validAppName(name) {
		return store.Client{}, "", errf(400, InvalidRequest, "Invalid name")
	}
	owner, e := s.appOwner(ctx, v, ownerUserID)
	if e != nil {
		return store.Client{}, "", e
	}
	allowed := v.roleScopes(owner)
	var granted []string
	for _, sc := range scopes {
		for _, x := range SplitScopes(sc) {
			if hasString(allowed, x) {
				granted = appendUnique(granted, x)
			}
		}
	}
	if len(granted) == 0 {
		return store.Client{}, "", errf(400, InvalidScope, "Provide at least one valid scope for the app")
	}
	max := v.r.Settings.MaxAppsPerUser
	if max <= 0 {
		max = DefaultMaxAppsPerUser
	}
	owned, err := s.st.ListClientsByOwner(ctx, v.r.Name, owner.ID)
	if err != nil {
		return store.Client{}, "", s.internal("list apps", err)
	}
	secret, err := password.GenerateSecret()
	if err != nil {
		return store.Client{}, "", s.internal("app secret", err)
	}
	now := s.now().UTC()
	c := store.Client{
		Realm:                  v.r.Name,
		ClientID:               newID(),
		ID:                     newID(),
		Name:                   name,
		Enabled:                true,
		SecretHash:             s.secrets.Hash(secret),
		ClientAuthenticator:    "client-secret",
		ServiceAccountsEnabled: true,
		ServiceAccountUserID:   owner.ID,
		OwnerUserID:            owner.ID,
		Scopes:                 granted,
		// The OIDC door's client_credentials for an app grants the app's
		// scopes and no role claims, so that the gateway cannot widen
		// them with the owner's other roles.
		DefaultClientScopes: append([]string{"profile", "email"}, granted...),
		OptionalScopes:      []string{},
		Attributes:          map[string]string{"client_credentials.use_refresh_token": "true"},
		Created:             now,
	}
	err = s.st.UpdateUser(ctx, v.r.Name, owner.ID, func(cur store.User) (store.User, error) {
		kept, count := liveSlots(cur.Attributes[attrAppSlots], owned, now)
		if count >= max {
			return cur, errf(400, InvalidRequest, fmt.Sprintf("Maximal amount of apps reached (%d). Please delete another app in order to register a new one", max))
		}
		cur.Attributes = cloneAttrs(cur.Attributes)
		cur.Attributes[attrAppSlots] = append(kept, c.ClientID+" "+strconv.FormatInt(now.Unix(), 10))
		return cur, nil
	})
	if err != nil {
		return store.Client{}, "", s.asError("reserve app slot", err)
	}
	if err := s.st.CreateClient(ctx, c); err != nil {
		s.releaseSlot(ctx, v.r.Name, owner.ID, c.ClientID)
		return store.Client{}, "", s.internal("create app", err)
	}
	return c, secret, nil
}

// liveSlots drops reservations whose app is neither in the store nor
// recent, and counts the owner's apps: every stored app plus every
// reservation still in flight.
func liveSlots(slots []string, owned []store.Client, now time.Time) (kept []string, count int) {
	ids := map[string]bool{}
	for _, c := range owned {
		ids[c.ClientID] = true
	}
	count = len(ids)
	for _, sl := range slots {
		id, ts, _ := strings.Cut(sl, " ")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if ids[id] {
			kept = append(kept, sl)
			continue
		}
		if err == nil && now.Sub(time.Unix(sec, 0)) < slotGrace {
			kept = append(kept, sl)
			count++
		}
	}
	return kept, count
}

func cloneAttrs(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m)+1)
	for k, v := range m {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func (s *Service) releaseSlot(ctx context.Context, realm, ownerID, clientID string) {
	err := s.st.UpdateUser(ctx, realm, ownerID, func(cur store.User) (store.User, error) {
		var kept []string
		for _, sl := range cur.Attributes[attrAppSlots] {
			if id, _, _ := strings.Cut(sl, " "); id != clientID {
				kept = append(kept, sl)
			}
		}
		cur.Attributes = cloneAttrs(cur.Attributes)
		if len(kept) == 0 {
			delete(cur.Attributes, attrAppSlots)
		} else {
			cur.Attributes[attrAppSlots] = kept
		}
		return cur, nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("releasing app slot", "realm", realm, "user", ownerID, "err", err)
	}
}

// asError passes a core decision through and turns anything else into
// an internal error.
func (s *Service) asError(what string, err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	if errors.Is(err, store.ErrNotFound) {
		return errf(404, NotFound, "Not found")
	}
	return s.internal(what, err)
}

func (s *Service) appOwner(ctx context.Context, v *realmView, userID string) (*store.User, *Error) {
	u, err := s.user(ctx, v.r.Name, userID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalidToken("User not found")
		}
		return nil, s.internal("user lookup", err)
	}
	if !u.Enabled || u.ServiceAccountClientID != "" {
		return nil, errf(403, AccessDenied, "This account may not manage apps")
	}
	return u, nil
}

// ListApps lists the apps a developer owns, oldest first.
func (s *Service) ListApps(ctx context.Context, realm, ownerUserID string) ([]store.Client, error) {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return nil, e
	}
	if _, e := s.appOwner(ctx, v, ownerUserID); e != nil {
		return nil, e
	}
	apps, err := s.st.ListClientsByOwner(ctx, v.r.Name, ownerUserID)
	if err != nil {
		return nil, s.internal("list apps", err)
	}
	sort.SliceStable(apps, func(i, j int) bool { return apps[i].Created.Before(apps[j].Created) })
	return apps, nil
}

// RevokeApp deletes one of the developer's apps, named by its key
// (client_id) or its internal id. Only the owner may; for anyone else the
// app does not exist. Its tokens stop working at once: the bearer check
// looks the client up on every call, and the store's change event drops
// it from every node's cache.
func (s *Service) RevokeApp(ctx context.Context, realm, ownerUserID, appID string) error {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return e
	}
	if _, e := s.appOwner(ctx, v, ownerUserID); e != nil {
		return e
	}
	apps, err := s.st.ListClientsByOwner(ctx, v.r.Name, ownerUserID)
	if err != nil {
		return s.internal("list apps", err)
	}
	for _, a := range apps {
		if appID == "" || (a.ClientID != appID && a.ID != appID) {
			continue
		}
		if err := s.st.DeleteClient(ctx, v.r.Name, a.ClientID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return s.internal("delete app", err)
		}
		// This node stops honouring the app's tokens now, not when the
		// change feed gets here; other nodes follow within the feed's
		// latency.
		s.mu.Lock()
		s.clients.remove(key2(v.r.Name, a.ClientID))
		s.mu.Unlock()
		s.releaseSlot(ctx, v.r.Name, ownerUserID, a.ClientID)
		return nil
	}
	return errf(404, NotFound, "Could not find app")
}
