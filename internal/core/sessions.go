package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// lifetimes are the idle and max lifespans that apply to one session.
type lifetimes struct {
	idle, max time.Duration // max 0: no max
}

// sessionLifetimes follows Keycloak's names: client attributes override the
// realm (so a 14-day refresh window for one client is configuration), the
// realm's client-session fields shorten the SSO session's.
func (v *realmView) sessionLifetimes(c *store.Client, offline bool) lifetimes {
	st := v.r.Settings
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	if offline {
		l := lifetimes{idle: sec(st.OfflineSessionIdleTimeout)}
		if n := attrInt(c, "client.offline.session.idle.timeout"); n > 0 {
			l.idle = sec(n)
		}
		if st.OfflineSessionMaxLifespanEnabled {
			l.max = sec(st.OfflineSessionMaxLifespan)
			if n := attrInt(c, "client.offline.session.max.lifespan"); n > 0 {
				l.max = sec(n)
			}
		}
		return l
	}
	l := lifetimes{idle: sec(st.SSOSessionIdleTimeout), max: sec(st.SSOSessionMaxLifespan)}
	if n := st.ClientSessionIdleTimeout; n > 0 && sec(n) < l.idle {
		l.idle = sec(n)
	}
	if n := st.ClientSessionMaxLifespan; n > 0 && sec(n) < l.max {
		l.max = sec(n)
	}
	if n := attrInt(c, "client.session.idle.timeout"); n > 0 {
		l.idle = sec(n)
	}
	if n := attrInt(c, "client.session.max.lifespan"); n > 0 {
		l.max = sec(n)
	}
	return l
}

// expiry is when a session seen last at lastSeen ends by itself.
func (l lifetimes) expiry(started, lastSeen time.Time) time.Time {
	e := lastSeen.Add(l.idle)
	if l.max > 0 {
		if m := started.Add(l.max); m.Before(e) {
			e = m
		}
	}
	return e
}

// limitAdmit is the user-session-limits decision, run by the store inside
// the transaction that inserts the new session, so that 50 parallel logins
// against a limit of 5 leave exactly 5 sessions on one node or many.
func limitAdmit(lim *store.SessionLimits, clientID string, now time.Time) func([]store.Session) ([]string, error) {
	return func(existing []store.Session) ([]string, error) {
		var end []string
		var live []store.Session // online sessions still alive, oldest first
		for _, e := range existing {
			if e.Offline {
				continue
			}
			if !e.Expires.IsZero() && !now.Before(e.Expires) {
				end = append(end, e.ID) // expired: clean up on the way
				continue
			}
			live = append(live, e)
		}
		if lim == nil || (lim.RealmLimit <= 0 && lim.ClientLimit <= 0) {
			return end, nil
		}
		clientCount := 0
		for _, e := range live {
			if e.ClientID == clientID {
				clientCount++
			}
		}
		overClient := lim.ClientLimit > 0 && clientCount >= lim.ClientLimit
		overRealm := lim.RealmLimit > 0 && len(live) >= lim.RealmLimit
		if !overClient && !overRealm {
			return end, nil
		}
		if lim.Behavior != store.TerminateOldestSession {
			msg := lim.ErrorMessage
			if msg == "" {
				if overClient {
					msg = fmt.Sprintf("Session limit exceeded: at most %d sessions per user for this client", lim.ClientLimit)
				} else {
					msg = fmt.Sprintf("Session limit exceeded: at most %d sessions per user in this realm", lim.RealmLimit)
				}
			}
			return nil, errf(400, InvalidGrant, msg)
		}
		ended := map[string]bool{}
		// Per-client limit first: end that client's oldest sessions.
		if lim.ClientLimit > 0 {
			for i := 0; clientCount >= lim.ClientLimit && i < len(live); i++ {
				if live[i].ClientID == clientID {
					ended[live[i].ID] = true
					end = append(end, live[i].ID)
					clientCount--
				}
			}
		}
		if lim.RealmLimit > 0 {
			remaining := len(live) - len(ended)
			for i := 0; remaining >= lim.RealmLimit && i < len(live); i++ {
				if !ended[live[i].ID] {
					ended[live[i].ID] = true
					end = append(end, live[i].ID)
					remaining--
				}
			}
		}
		return end, nil
	}
}

// endSession deletes a session and forgets it on this node at once (other
// nodes learn of it through the change feed). Every path that ends a
// session goes through here.
func (s *Service) endSession(ctx context.Context, realm, sid string) error {
	err := s.st.DeleteSession(ctx, realm, sid)
	s.sessionsEnded(realm, sid)
	return err
}

// endLogin ends session sid and the sessions single sign-on joined to the
// same login, as Keycloak's logout ends a user session with every client
// session in it: the session the browser logged in with, and each session
// started from it for another client. Offline sessions outlive it, as in
// Keycloak. store.ErrNotFound means that sid itself had already ended.
func (s *Service) endLogin(ctx context.Context, realm, sid string) error {
	sess, err := s.st.GetSession(ctx, realm, sid)
	if err != nil {
		return err
	}
	if err := s.endSession(ctx, realm, sid); err != nil {
		return err
	}
	if sess.Offline {
		return nil
	}
	root := sid
	if sess.ParentID != "" {
		root = sess.ParentID
	}
	others, err := s.st.ListUserSessions(ctx, realm, sess.UserID)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.Offline || o.ID == sid || o.ID != root && o.ParentID != root {
			continue
		}
		if err := s.endSession(ctx, realm, o.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// sessionsEnded drops ended sessions from this node's caches at once,
// instead of waiting for the store's change feed (which runs on its own
// goroutine): a client told "logged out" must not see the session's access
// token accepted by its very next request to this node.
func (s *Service) sessionsEnded(realm string, ids ...string) {
	for _, id := range ids {
		s.onChange(store.Change{Kind: store.ChangeSession, Realm: realm, ID: id})
	}
}
