package sqlite

import (
	"fmt"
	"time"

	// The pure-Go SQLite: no cgo, so gatehouse stays one static binary that
	// cross-compiles with GOOS/GOARCH alone (docs/dependencies.md has the
	// measurements behind the choice).
	_ "modernc.org/sqlite"
)

// defaultDriver is modernc.org/sqlite, registered as "sqlite".
func defaultDriver() driverConfig { return driverConfig{name: "sqlite", dsn: moderncDSN} }

// moderncDSN spells the per-connection pragmas in modernc's _pragma form.
// synchronous=NORMAL is the usual WAL setting: a commit is atomic and
// survives a process crash; only a power loss may undo the last commits.
func moderncDSN(path string, writer bool, busy time.Duration) string {
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", fileURI(path), busy.Milliseconds())
	if writer {
		return dsn + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	return dsn + "&_pragma=query_only(1)"
}
