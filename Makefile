# gatehouse: common tasks. The benchmark driver is a Go program
# (bench/run); see docs/benchmarks.md for what it measures.

.PHONY: test bench bench-nogrowth

# Every package's tests with the race detector, nothing cached.
test:
	go test -race -count=1 -timeout 5m ./...

# Build gatehouse and the tools, run every scenario at c = 1..16, the limits,
# every scenario again on PostgreSQL (at its best c, in a fresh schema of the
# local server, dropped afterwards; skipped when unreachable), the
# oidc-provider peer and the 1,000,000-user growth check, and write
# docs/benchmarks.md and docs/benchmarks.png (about 8 minutes on 2 cores).
# Extra flags: make bench BENCHFLAGS="-dur 10s -warmup 2s"; another server:
# BENCHFLAGS="-postgres postgres://user@host:5432/db"; none: BENCHFLAGS='-postgres ""'.
bench:
	go run ./bench/run $(BENCHFLAGS)

# The same without the growth check (about 6 minutes).
bench-nogrowth:
	go run ./bench/run -growth=false $(BENCHFLAGS)
