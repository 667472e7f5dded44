package core

import (
	"context"
	"errors"
	"sort"

	"github.com/gatehouse/gatehouse/internal/store"
)

// PortalClientID is the public client the developer portal signs users in
// with; its sessions are the portal's.
const PortalClientID = "gatehouse-portal"

// EnsurePortalClient creates the portal's public client in realm when the
// realm has none of that id. An existing one is left as it is, so that an
// administrator may tune it (session lifetimes, say) or disable it.
func (s *Service) EnsurePortalClient(ctx context.Context, realm string) error {
	if _, err := s.client(ctx, realm, PortalClientID); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	err := s.st.CreateClient(ctx, store.Client{
		Realm:    realm,
		ClientID: PortalClientID,
		ID:       newID(),
		Name:     "gatehouse portal",
		Enabled:  true,
		// Public: the portal holds no secret of its own; it signs a user
		// in only after CheckPassword.
		Public:  true,
		Created: s.now().UTC(),
	})
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil // created concurrently (another replica or door)
	}
	return err
}

// ActiveSession returns session sid of realm and its user when the session
// exists, has not expired and its user is enabled: the check behind a
// portal page, which holds a session reference rather than a bearer token.
func (s *Service) ActiveSession(ctx context.Context, realm, sid string) (*store.Session, *store.User, *Error) {
	notActive := invalidToken("Session not active")
	if sid == "" {
		return nil, nil, notActive
	}
	sess, err := s.st.GetSession(ctx, realm, sid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, notActive
	}
	if err != nil {
		return nil, nil, s.internal("session lookup", err)
	}
	if sess.Expires.IsZero() || !s.now().Before(sess.Expires) {
		return nil, nil, notActive
	}
	u, err := s.st.GetUser(ctx, realm, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, notActive
	}
	if err != nil {
		return nil, nil, s.internal("user lookup", err)
	}
	if !u.Enabled {
		return nil, nil, invalidToken("User disabled")
	}
	return &sess, &u, nil
}

// UserSessions lists a user's live sessions (online and offline), the most
// recently used first.
func (s *Service) UserSessions(ctx context.Context, realm, userID string) ([]store.Session, *Error) {
	all, err := s.st.ListUserSessions(ctx, realm, userID)
	if err != nil {
		return nil, s.internal("list sessions", err)
	}
	now := s.now()
	live := all[:0]
	for _, x := range all {
		if !x.Expires.IsZero() && now.Before(x.Expires) {
			live = append(live, x)
		}
	}
	sort.SliceStable(live, func(i, j int) bool { return live[i].LastSeen.After(live[j].LastSeen) })
	return live, nil
}

// EndUserSession ends session sid on behalf of its user: a user may end
// only their own sessions, and someone else's looks exactly like one that
// does not exist.
func (s *Service) EndUserSession(ctx context.Context, realm, userID, sid string) *Error {
	notFound := errf(404, NotFound, "Session not found")
	if sid == "" || userID == "" {
		return notFound
	}
	sess, err := s.st.GetSession(ctx, realm, sid)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sess.UserID != userID) {
		return notFound
	}
	if err != nil {
		return s.internal("session lookup", err)
	}
	if err := s.endSession(ctx, realm, sid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound
		}
		return s.internal("end session", err)
	}
	return nil
}
