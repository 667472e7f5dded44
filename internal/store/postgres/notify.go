package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/store"
)

// The NOTIFY payload is one JSON object, either a batch of changes
//
//	{"c":[{"k":"session","r":"acme","i":"s1","u":"u1"}, ...]}
//
// or a Subscribe barrier {"b":"<random token>"}. Short keys keep a batch
// of several hundred changes inside one notification.
type wireMsg struct {
	C []wireChange `json:"c,omitempty"`
	B string       `json:"b,omitempty"`
}

type wireChange struct {
	K string `json:"k"`
	R string `json:"r"`
	I string `json:"i"`
	U string `json:"u,omitempty"`
}

// maxPayload keeps a notification under PostgreSQL's limit of 8000 bytes.
const maxPayload = 7900

// knownKind reports whether a payload's kind is one this binary knows;
// a change of any other kind is not passed on.
func knownKind(k store.ChangeKind) bool {
	switch k {
	case store.ChangeRealm, store.ChangeClient, store.ChangeUser,
		store.ChangeSession, store.ChangeKey, store.ChangeRevocation:
		return true
	}
	return false
}

// encodeChanges packs changes, in order, into as few payloads as fit. A
// change too long for a notification of its own (ids of kilobytes) is
// widened to "everything of its kind in its realm", or in every realm,
// which a cache handles just as correctly, if less cheaply.
func encodeChanges(cs []store.Change) []string {
	var out []string
	var buf []byte
	flush := func() {
		if len(buf) > 0 {
			out = append(out, `{"c":[`+string(buf)+`]}`)
			buf = buf[:0]
		}
	}
	const frame = len(`{"c":[]}`)
	for _, c := range cs {
		b := encodeChange(c)
		if len(b)+frame > maxPayload {
			b = encodeChange(store.Change{Kind: c.Kind, Realm: c.Realm})
			if len(b)+frame > maxPayload {
				b = encodeChange(store.Change{Kind: c.Kind})
			}
		}
		if len(buf) > 0 && len(buf)+1+len(b)+frame > maxPayload {
			flush()
		}
		if len(buf) > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, b...)
	}
	flush()
	return out
}

func encodeChange(c store.Change) []byte {
	// Marshalling a struct of strings cannot fail.
	b, _ := json.Marshal(wireChange{K: string(c.Kind), R: c.Realm, I: c.ID, U: c.UserID})
	return b
}

// decodePayload parses a notification. Any process that can connect to
// the database can NOTIFY on the channel, so the payload is untrusted: an
// error means "not understood", and changes of unknown kinds are left out.
func decodePayload(p string) (changes []store.Change, barrier string, err error) {
	var m wireMsg
	if err := json.Unmarshal([]byte(p), &m); err != nil {
		return nil, "", fmt.Errorf("postgres: change payload: %w", err)
	}
	for _, w := range m.C {
		c := store.Change{Kind: store.ChangeKind(w.K), Realm: w.R, ID: w.I, UserID: w.U}
		if knownKind(c.Kind) {
			changes = append(changes, c)
		}
	}
	return changes, m.B, nil
}

// resetChanges tells subscribers to drop everything of every kind: Realm
// "" and ID "" mean every entity in every realm. The listener sends them
// after it reconnects, as changes may have been committed while it was
// away.
func resetChanges() []store.Change {
	return []store.Change{
		{Kind: store.ChangeRealm}, {Kind: store.ChangeClient}, {Kind: store.ChangeUser},
		{Kind: store.ChangeSession}, {Kind: store.ChangeKey}, {Kind: store.ChangeRevocation},
	}
}

// connectListener opens the listener's own connection and LISTENs.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenCfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: change feed: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("postgres: change feed: listen: %w", err)
	}
	s.listenPID.Store(int32(conn.PgConn().PID()))
	s.listening.Store(true)
	return conn, nil
}

// Listener timing: how long the connection may stay silent before it is
// pinged, how long a ping may take, and the longest pause between
// reconnect attempts.
const (
	idleCheck   = 30 * time.Second
	pingTimeout = 5 * time.Second
	maxBackoff  = 5 * time.Second
)

// listen delivers notifications until ctx ends, reconnecting whenever the
// connection is lost.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(s.done)
	for {
		err := s.receive(ctx, conn)
		s.listening.Store(false)
		closeCtx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		_ = conn.Close(closeCtx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("postgres change feed lost; reconnecting", "err", err)
		conn = s.reconnect(ctx)
		if conn == nil {
			return
		}
		s.log.Info("postgres change feed reconnected; caches resync")
		// Changes committed while the listener was away are lost: every
		// subscriber drops everything and reads the store again. This
		// comes after LISTEN, so nothing committed from here on is lost.
		s.subMu.Lock()
		s.dispatchLocked(resetChanges())
		s.admitAllPendingLocked()
		s.subMu.Unlock()
	}
}

// reconnect tries until it has a listening connection or ctx ends (nil).
func (s *Store) reconnect(ctx context.Context) *pgx.Conn {
	backoff := 100 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, maxBackoff)
		conn, err := s.connectListener(cctx)
		cancel()
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("postgres change feed: reconnect failed", "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// receive handles notifications until the connection fails or ctx ends.
// A connection silent for s.idle is pinged, so that one cut without a
// word (a dead peer, a dropped NAT entry) is noticed in seconds rather
// than at the next TCP timeout.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, s.idle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			s.handle(n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed():
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

// handle passes one notification on.
func (s *Store) handle(payload string) {
	changes, barrier, err := decodePayload(payload)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if err != nil {
		// Something this binary does not understand (a newer replica, a
		// stray NOTIFY) may still have been a change: drop everything
		// rather than risk a stale cache. The payload is not logged.
		s.log.Warn("postgres change feed: payload not understood; caches resync", "err", err)
		s.dispatchLocked(resetChanges())
		return
	}
	if barrier != "" {
		if p, ok := s.pending[barrier]; ok {
			delete(s.pending, barrier)
			s.admitLocked(p)
		}
	}
	s.dispatchLocked(changes)
}

// dispatchLocked hands changes to the subscribers. Every delivery and
// every admission happens under subMu, so a subscriber admitted at its
// barrier gets exactly what the listener received after it.
func (s *Store) dispatchLocked(cs []store.Change) { s.fan.Publish(cs) }

// pendingSub is a subscriber waiting for its barrier.
type pendingSub struct {
	fn       func(store.Change)
	cancel   func() // set on admission
	admitted chan struct{}
}

// admitLocked starts delivering to p (nothing, once the store is closed:
// the fan-out then ignores it).
func (s *Store) admitLocked(p *pendingSub) {
	p.cancel = s.fan.Subscribe(p.fn)
	close(p.admitted)
}

func (s *Store) admitAllPendingLocked() {
	for tok, p := range s.pending {
		delete(s.pending, tok)
		s.admitLocked(p)
	}
}

// barrierWait bounds how long Subscribe waits for its barrier to come
// back through the database.
const barrierWait = 5 * time.Second

// Subscribe calls fn, on a goroutine of its own, for every change
// committed after Subscribe was called, by this store or any other on the
// same database and channel, in commit order. After a reconnect of the
// listener fn receives one change per kind with Realm "" and ID "":
// consumers must treat that as "everything of this kind, in every realm".
// After cancel returns fn is not called again, except for a call already
// under way.
//
// Subscribe sends a marker through the channel and starts delivering from
// the moment it comes back, so that changes this store committed before
// the call, still on their way, are not delivered late to the new
// subscriber. It waits for that round trip (a few milliseconds; at most
// barrierWait when the database is unreachable).
func (s *Store) Subscribe(fn func(store.Change)) (cancel func()) {
	p := &pendingSub{fn: fn, admitted: make(chan struct{})}
	var tok [16]byte
	_, _ = rand.Read(tok[:]) // crypto/rand.Read never fails
	token := hex.EncodeToString(tok[:])

	s.subMu.Lock()
	if s.closed {
		s.subMu.Unlock()
		return func() {}
	}
	s.pending[token] = p
	s.subMu.Unlock()

	ctx, stop := context.WithTimeout(context.Background(), barrierWait)
	defer stop()
	payload, _ := json.Marshal(wireMsg{B: token})
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, string(payload)); err == nil {
		select {
		case <-p.admitted:
		case <-ctx.Done():
		}
	}
	s.subMu.Lock()
	if _, waiting := s.pending[token]; waiting {
		// The barrier was lost (the listener is reconnecting, which
		// will send resets anyway): deliver from now on.
		delete(s.pending, token)
		s.admitLocked(p)
	}
	cancel = p.cancel
	s.subMu.Unlock()
	return cancel
}
