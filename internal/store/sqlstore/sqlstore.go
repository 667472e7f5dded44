// Package sqlstore holds what gatehouse's two SQL backends (store/sqlite
// and store/postgres) have in common because they store the same values
// the same way: times as integer Unix milliseconds, slices and maps as
// JSON text, empty byte slices as NULL. It has the per-entity row codecs
// (column lists, scanning a row into an entity, an entity's column
// values), the subscriber fan-out behind Store.Subscribe, and the loading
// and bookkeeping of numbered schema migrations.
//
// SQL text stays with each backend: placeholders, locking and upserts are
// spelled differently by each dialect, and a query is easiest to check
// where it runs.
package sqlstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Scanner is a row as both database/sql (*sql.Row, *sql.Rows) and pgx
// (pgx.Row, pgx.Rows) present it.
type Scanner interface{ Scan(dest ...any) error }

// Millis is t as stored: Unix milliseconds, with the zero time as 0 so
// that "not set" survives the round trip.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMillis is the time Millis stored as v, in UTC; 0 is the zero time.
func FromMillis(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// NowMillis is the current time as the store keeps it (UTC, whole
// milliseconds), so that a value written now compares equal to itself
// read back.
func NowMillis() time.Time { return FromMillis(time.Now().UnixMilli()) }

// NextUpdated is the Updated stamp of a realm written now whose previous
// stamp was prev: now, or one millisecond after prev should the clock not
// have moved past it, so that a cache comparing stamps always sees the
// write.
func NextUpdated(prev time.Time) time.Time {
	t := NowMillis()
	if !t.After(prev) {
		t = prev.Add(time.Millisecond)
	}
	return t
}

// Columns turns a column list constant into its column names.
func Columns(cols string) []string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("store: encode: %w", err)
	}
	return string(b), nil
}

// jsonCols encodes several values; the first error wins.
func jsonCols(vs ...any) ([]string, error) {
	out := make([]string, len(vs))
	for i, v := range vs {
		s, err := jsonText(v)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// jsonDecode fills dst from its JSON text; NULL-ish text leaves dst as is.
func jsonDecode(text string, dst any) error {
	if text == "" || text == "null" {
		return nil
	}
	if err := json.Unmarshal([]byte(text), dst); err != nil {
		return fmt.Errorf("store: decode: %w", err)
	}
	return nil
}

// nilIfEmpty keeps an empty byte slice out of the database as NULL, so
// that it reads back as nil whatever the driver does with empty blobs.
func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
