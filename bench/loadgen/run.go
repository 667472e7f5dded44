package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// report is the one JSON object a run prints.
type report struct {
	Scenario string `json:"scenario"`
	Mode     string `json:"mode"` // "closed" or "open"
	// Transport is the HTTP client that sent the load: "sync" or "std".
	Transport   string  `json:"transport"`
	Connections int     `json:"connections"`
	Rate        int     `json:"rate"`
	DurationS   float64 `json:"duration_s"`
	// Requests counts every request whose (intended, for open loop) start
	// fell in the measured window, failed ones included.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// ThroughputRPS counts successes only, over DurationS.
	ThroughputRPS float64 `json:"throughput_rps"`
	// The percentiles cover successful requests only.
	P50ms float64 `json:"p50_ms"`
	P90ms float64 `json:"p90_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// LatencyFrom says what latency is measured from: "send" (closed loop)
	// or "intended_send" (open loop).
	LatencyFrom string `json:"latency_from"`
	// SendLagP50ms and SendLagP99ms (open loop only) are how late the
	// generator itself sent requests after they were due: timer slack and
	// scheduling on the load-generating side. They are part of the open-loop
	// latencies above, so a latency close to them says little about the server.
	SendLagP50ms *float64 `json:"send_lag_p50_ms,omitempty"`
	SendLagP99ms *float64 `json:"send_lag_p99_ms,omitempty"`
	// P99Windows (open loop only) counts the 10 ms windows of intended send
	// time that hold the slowest 1 % of the requests. A tail that is the
	// server's steady cost is spread over the run; one that a pause set
	// (a stall of the process, its core or the machine) sits in a few
	// windows, all requests due while it lasted.
	P99Windows   *int     `json:"p99_windows,omitempty"`
	ErrorSamples []string `json:"error_samples,omitempty"`
}

func (r report) humanLine() string {
	rate := ""
	if r.Mode == "open" {
		rate = fmt.Sprintf(" rate=%d/s", r.Rate)
	}
	lag := ""
	if r.SendLagP50ms != nil && r.SendLagP99ms != nil {
		lag = fmt.Sprintf("; generator send lag p50 %.2f ms, p99 %.2f ms", *r.SendLagP50ms, *r.SendLagP99ms)
	}
	if r.P99Windows != nil {
		lag += fmt.Sprintf("; the slowest 1 %% were due in %d windows of 10 ms", *r.P99Windows)
	}
	return fmt.Sprintf("%s %s-loop c=%d%s: %d requests, %d errors in %.2fs = %.1f ok/s; latency from %s p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms%s",
		r.Scenario, r.Mode, r.Connections, rate, r.Requests, r.Errors, r.DurationS, r.ThroughputRPS,
		r.LatencyFrom, r.P50ms, r.P90ms, r.P99ms, r.MaxMs, lag)
}

// maxSamples bounds how many distinct error texts a report keeps.
const maxSamples = 5

// Histogram range, in microseconds: 1 µs to 10 minutes at 3 significant
// digits, which is far wider than any -timeout the run allows.
const (
	histMin = 1
	histMax = int64(10 * time.Minute / time.Microsecond)
)

// newTransport is net/http's transport, for -transport std and https://:
// keep-alive, and never more than conns connections to the server, so
// closed-loop concurrency and open-loop queueing both happen here, visibly,
// not in the kernel.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		// Benchmarks target loopback; an environment proxy would measure
		// the proxy.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:     conns,
		MaxIdleConnsPerHost: conns,
		MaxIdleConns:        conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// newClient returns the HTTP client of a run and the name of its transport.
// The sync transport speaks plain HTTP only, so https:// targets always get
// net/http's.
func newClient(cfg config) (*http.Client, string) {
	if cfg.transport == "sync" && strings.HasPrefix(cfg.baseURL, "http://") {
		// The transport enforces the timeout itself; see syncTransport.
		return &http.Client{Transport: newSyncTransport(cfg.conns, cfg.timeout)}, "sync"
	}
	return &http.Client{Transport: newTransport(cfg.conns), Timeout: cfg.timeout}, "std"
}

// startPacer wraps a vegeta pacer and remembers when the attack began, in
// vegeta's own clock, so intended send times can be computed exactly as the
// pacer schedules them.
type startPacer struct {
	vegeta.Pacer
	mu    sync.Mutex
	began time.Time
}

func (p *startPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	p.mu.Lock()
	if p.began.IsZero() {
		p.began = time.Now().Add(-elapsed)
	}
	p.mu.Unlock()
	return p.Pacer.Pace(elapsed, hits)
}

func (p *startPacer) start() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.began
}

// tally is one consumer goroutine's share of the results.
type tally struct {
	hist     *hdrhistogram.Histogram
	lag      *hdrhistogram.Histogram // open loop: actual minus intended send
	due      []dueLatency            // open loop, up to maxDue: for P99Windows
	requests int64
	errors   int64
	lastEnd  time.Time
}

// errorSamples keeps the first few distinct error texts.
type errorSamples struct {
	mu   sync.Mutex
	seen []string
}

func (s *errorSamples) add(err error) {
	msg := err.Error()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) >= maxSamples {
		return
	}
	for _, m := range s.seen {
		if m == msg {
			return
		}
	}
	s.seen = append(s.seen, msg)
}

// run performs setup, the attack (warm-up plus measurement) and returns the
// report. Progress notes go to logw.
func run(ctx context.Context, cfg config, logw io.Writer) (report, error) {
	hc, transport := newClient(cfg)
	defer hc.CloseIdleConnections()
	c := &client{http: hc, cfg: cfg, ep: realmEndpoints(cfg)}

	sc, err := newScenario(ctx, cfg, c)
	if err != nil {
		return report{}, err
	}
	defer sc.close()

	mode, latencyFrom := "closed", "send"
	var interval time.Duration
	pacer := &startPacer{Pacer: vegeta.ConstantPacer{}} // zero rate: as fast as the workers go
	opts := []func(*vegeta.Attacker){
		vegeta.Client(hc),
		vegeta.Workers(uint64(cfg.conns)),
		vegeta.MaxWorkers(uint64(cfg.conns)),
		vegeta.MaxBody(maxBody),
	}
	if cfg.rate > 0 {
		mode, latencyFrom = "open", "intended_send"
		pacer.Pacer = vegeta.ConstantPacer{Freq: cfg.rate, Per: time.Second}
		// The same integer interval vegeta's ConstantPacer uses: hit k
		// (0-based) is due at began + (k+1)*interval.
		interval = time.Duration(time.Second.Nanoseconds() / int64(cfg.rate))
		// More workers than connections: when every connection is busy the
		// extra requests wait for one inside the transport, and that wait
		// is part of their latency.
		opts[2] = vegeta.MaxWorkers(uint64(cfg.maxWorkers))
	}
	atk := vegeta.NewAttacker(opts...)
	fmt.Fprintf(logw, "loadgen: %s %s-loop, c=%d, %s transport, warm-up %s, measuring %s\n", cfg.scenario, mode, cfg.conns, transport, cfg.warmup, cfg.duration)

	results := atk.Attack(sc.targeter, pacer, cfg.warmup+cfg.duration, cfg.scenario)

	// Stop on interrupt, and in any case stop blocked refresh targeters
	// once the attack has had its time plus one request timeout.
	hard := time.AfterFunc(cfg.warmup+cfg.duration+cfg.timeout+time.Second, func() {
		atk.Stop()
		sc.close()
	})
	defer hard.Stop()
	stopWatch := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stopWatch()

	samples := &errorSamples{}
	consumers := max(2, runtime.NumCPU())
	tallies := make([]*tally, consumers)
	var wg sync.WaitGroup
	for i := range tallies {
		t := &tally{hist: hdrhistogram.New(histMin, histMax, 3), lag: hdrhistogram.New(histMin, histMax, 3)}
		tallies[i] = t
		wg.Go(func() {
			var windowStart time.Time
			for res := range results {
				herr := sc.handle(res)
				if windowStart.IsZero() {
					windowStart = pacer.start().Add(cfg.warmup)
				}
				start := res.Timestamp
				if interval > 0 {
					start = pacer.start().Add(time.Duration(res.Seq+1) * interval)
				}
				if start.Before(windowStart) {
					continue // warm-up
				}
				t.requests++
				if end := res.End(); end.After(t.lastEnd) {
					t.lastEnd = end
				}
				if herr != nil {
					t.errors++
					samples.add(herr)
					continue
				}
				// Clamped into range, so RecordValue cannot fail.
				_ = t.hist.RecordValue(clampUs(res.End().Sub(start)))
				if interval > 0 {
					_ = t.lag.RecordValue(clampUs(res.Timestamp.Sub(start)))
					if len(t.due) < maxDue/consumers {
						t.due = append(t.due, dueLatency{window: uint32(start.Sub(windowStart) / dueWindow), us: uint32(clampUs(res.End().Sub(start)))})
					}
				}
			}
		})
	}
	wg.Wait()

	total := &tally{hist: hdrhistogram.New(histMin, histMax, 3), lag: hdrhistogram.New(histMin, histMax, 3)}
	for _, t := range tallies {
		total.hist.Merge(t.hist)
		total.lag.Merge(t.lag)
		total.due = append(total.due, t.due...)
		total.requests += t.requests
		total.errors += t.errors
		if t.lastEnd.After(total.lastEnd) {
			total.lastEnd = t.lastEnd
		}
	}
	var elapsed time.Duration
	if began := pacer.start(); !began.IsZero() && !total.lastEnd.IsZero() {
		elapsed = total.lastEnd.Sub(began.Add(cfg.warmup))
	}
	rep := report{
		Scenario:     cfg.scenario,
		Mode:         mode,
		Transport:    transport,
		Connections:  cfg.conns,
		Rate:         cfg.rate,
		DurationS:    round3(elapsed.Seconds()),
		Requests:     total.requests,
		Errors:       total.errors,
		P50ms:        ms(total.hist.ValueAtQuantile(50)),
		P90ms:        ms(total.hist.ValueAtQuantile(90)),
		P99ms:        ms(total.hist.ValueAtQuantile(99)),
		MaxMs:        ms(total.hist.Max()),
		LatencyFrom:  latencyFrom,
		ErrorSamples: samples.seen,
	}
	if elapsed > 0 {
		rep.ThroughputRPS = round3(float64(total.requests-total.errors) / elapsed.Seconds())
	}
	if total.hist.TotalCount() == 0 {
		rep.MaxMs = 0
	}
	if interval > 0 {
		p50, p99 := ms(total.lag.ValueAtQuantile(50)), ms(total.lag.ValueAtQuantile(99))
		rep.SendLagP50ms, rep.SendLagP99ms = &p50, &p99
		if len(total.due) > 0 && len(total.due) == int(total.hist.TotalCount()) {
			n := slowestWindows(total.due)
			rep.P99Windows = &n
		}
	}
	return rep, nil
}

// dueLatency is one open-loop request: the dueWindow its intended send
// time fell in, counted from the start of measurement, and its latency.
type dueLatency struct {
	window uint32
	us     uint32
}

const (
	dueWindow = 10 * time.Millisecond
	// maxDue bounds the memory P99Windows takes (8 bytes a request); a
	// longer run reports no P99Windows.
	maxDue = 4 << 20
)

// slowestWindows counts the distinct windows that hold the slowest 1 %
// of due (rounded up), which it reorders.
func slowestWindows(due []dueLatency) int {
	slices.SortFunc(due, func(a, b dueLatency) int { return cmp.Compare(b.us, a.us) })
	seen := map[uint32]bool{}
	for _, d := range due[:(len(due)+99)/100] {
		seen[d.window] = true
	}
	return len(seen)
}

// clampUs converts d to whole microseconds within the histogram's range.
func clampUs(d time.Duration) int64 {
	return min(max(d.Microseconds(), histMin), histMax)
}

func ms(us int64) float64 { return round3(float64(us) / 1000) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
