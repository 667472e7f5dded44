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
// allocation. An argon2id hash allocates 7 MiB, so under a login load the
// collector ran after every one or two hashes, and its marking, sweeping
// and returning pages to the kernel (which the next hash faults back in)
// cost about 4 % of password-grant throughput (docs/design.md). The
// price is resident memory under load: the heap now grows to the goal
// before it is collected (a peak of about 120 MB under a login flood on
// two cores, against about 70 MB without). At rest nothing changes, since
// the floor's pages are never touched.
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
