//go:build race && linux

package rawconn

import (
	"runtime"
	"syscall"
	"unsafe"
)

// Package syscall tells the race detector that each write happens before
// the reads that may see its bytes, through a variable of its own; without
// that, whatever a program orders through a socket (a server set up before
// it answers, say) would look like a race. The variable is unexported, so
// in race-enabled builds only, raw reads and writes also make an empty
// call through package syscall, which does the telling.

// raceEnabled: see TestSparesTheMonitor.
const raceEnabled = true

// raceRead follows a raw read of p from fd.
func raceRead(fd uintptr, p []byte) {
	if len(p) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&p[0]), len(p))
	}
	var none [0]byte
	_, _ = syscall.Read(int(fd), none[:]) // a zero-length read returns at once and consumes nothing
}

// raceWrite precedes a raw write of p.
func raceWrite(p []byte) {
	_, _ = syscall.Write(-1, nil) // annotates, then fails with EBADF
	if len(p) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&p[0]), len(p))
	}
}
