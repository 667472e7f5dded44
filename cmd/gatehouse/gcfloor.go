package main

import (
	"os"
	"runtime"
)

// gcFloor is heap the collector counts but nothing uses: a 32 MiB []byte
// that is allocated once and never touched. Its pages are never written, so
// the kernel never backs them and the resident size does not grow; but the
// collector's next goal, twice the live heap, is now at least 64 MiB. A
// server whose live heap is a few MiB otherwise collects every few MiB of
// allocation: about thirty cycles a second for a gateway at a few thousand
// requests a second, each a latency bump for the requests that meet it.
// An argon2id hash allocates 7 MiB, so logins alone did the same.
//
// The floor is skipped when GOGC or GOMEMLIMIT is set: whoever sets them
// has chosen the collector's pace.
var gcFloor []byte

func setGCFloor() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	gcFloor = make([]byte, 32<<20)
	runtime.KeepAlive(gcFloor)
}
