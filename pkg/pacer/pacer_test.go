package pacer

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// fakeClock is a manual clock: Sleep advances Now by d plus an optional
// oversleep, without waiting in real time.
type fakeClock struct {
	now    time.Time
	sleeps int
	over   func() time.Duration  // extra time each Sleep takes, if set
	block  chan<- struct{}       // if set, Sleep signals here and blocks until ctx is done
	onCall func(d time.Duration) // observes each Sleep, if set
}

// fakeEpoch lies an hour in the real future, so a context deadline derived
// from fake time does not expire in real time while a test runs.
func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().Add(time.Hour).Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeps++
	if c.onCall != nil {
		c.onCall(d)
	}
	if c.block != nil {
		c.block <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.now = c.now.Add(d)
	if c.over != nil {
		c.now = c.now.Add(c.over())
	}
	return nil
}

func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }

type release struct {
	at time.Time
	n  int
}

// run sends batches of burst records for the simulated duration and returns
// when each batch was released. work, if set, is the producer's time
// between batches.
func run(t *testing.T, p *Pacer, c *fakeClock, burst int, dur time.Duration, work func() time.Duration) []release {
	t.Helper()
	ctx := context.Background()
	end := c.now.Add(dur)
	var rs []release
	for c.now.Before(end) {
		if _, err := p.Wait(ctx, burst); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		rs = append(rs, release{at: c.now, n: burst})
		if work != nil {
			c.advance(work())
		}
	}
	return rs
}

// countIn sums the records released in [from, to).
func countIn(rs []release, from, to time.Time) int {
	n := 0
	for _, r := range rs {
		if !r.at.Before(from) && r.at.Before(to) {
			n += r.n
		}
	}
	return n
}

// maxWindow is the most records released in any window [a, a+w) that starts
// at a release.
func maxWindow(rs []release, w time.Duration) int {
	best, sum, j := 0, 0, 0
	for i := range rs {
		for j < len(rs) && rs[j].at.Before(rs[i].at.Add(w)) {
			sum += rs[j].n
			j++
		}
		best = max(best, sum)
		sum -= rs[i].n
	}
	return best
}

func TestRate(t *testing.T) {
	tests := []struct {
		name  string
		eps   float64
		burst int
		dur   time.Duration
		over  time.Duration // max random oversleep per Sleep
		work  time.Duration // max random producer time per batch
		lag   time.Duration // Options.MaxLag
	}{
		{name: "5000 eps", eps: 5000, burst: 20, dur: 10 * time.Second},
		{name: "100000 eps", eps: 100000, burst: 30, dur: 10 * time.Second},
		{name: "100000 eps burst 1", eps: 100000, burst: 1, dur: 10 * time.Second},
		{name: "non-integer interval", eps: 3333.3, burst: 7, dur: 10 * time.Second},
		{name: "5000 eps oversleep", eps: 5000, burst: 20, dur: 10 * time.Second, over: 200 * time.Microsecond},
		{name: "100000 eps oversleep", eps: 100000, burst: 30, dur: 10 * time.Second, over: 200 * time.Microsecond},
		{name: "100000 eps oversleep and slow producer", eps: 100000, burst: 30, dur: 10 * time.Second, over: 100 * time.Microsecond, work: 100 * time.Microsecond},
		{name: "15 minutes no drift", eps: 3333.3, burst: 7, dur: 15 * time.Minute, over: 200 * time.Microsecond},
		{name: "100000 eps coarse sleeps with MaxLag", eps: 100000, burst: 30, dur: 10 * time.Second, over: time.Millisecond, lag: 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			c := newFakeClock()
			if tt.over > 0 {
				c.over = func() time.Duration { return time.Duration(rng.Int64N(int64(tt.over) + 1)) }
			}
			var work func() time.Duration
			if tt.work > 0 {
				work = func() time.Duration { return time.Duration(rng.Int64N(int64(tt.work) + 1)) }
			}
			p := New(Options{EPS: tt.eps, Burst: tt.burst, Clock: c, MaxLag: tt.lag})
			p.Restart()
			start := c.now
			rs := run(t, p, c, tt.burst, tt.dur, work)

			want := tt.eps * tt.dur.Seconds()
			got := float64(countIn(rs, start, start.Add(tt.dur)))
			if rel := math.Abs(got-want) / want; rel > 0.001 {
				t.Errorf("released %.0f records in %v, want %.0f (off by %.4f%%)", got, tt.dur, want, rel*100)
			}
			// The long-run schedule is exact: never more than one batch
			// beyond EPS*elapsed, and (with bounded lag) never more than
			// one Burst interval's worth behind it.
			slack := float64(tt.burst) + tt.eps*tt.lag.Seconds()
			if limit := want + slack; got > limit {
				t.Errorf("released %.0f records, more than EPS*T+Burst = %.0f", got, limit)
			}
			if tt.over == 0 && tt.work == 0 && got < want-float64(tt.burst) {
				t.Errorf("released %.0f records, fewer than EPS*T-Burst = %.0f", got, want-float64(tt.burst))
			}
			if w, limit := maxWindow(rs, time.Second), tt.eps+slack; float64(w) > limit {
				t.Errorf("a 1 s window holds %d records, more than EPS*(1s+MaxLag)+Burst = %.0f", w, limit)
			}
		})
	}
}

// TestCoarseSleepsWithoutMaxLag documents the limit of the default
// contract: when sleeps overshoot by more than one Burst interval, the
// schedule restarts and the rate falls short.
func TestCoarseSleepsWithoutMaxLag(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := newFakeClock()
	c.over = func() time.Duration { return time.Duration(rng.Int64N(int64(time.Millisecond) + 1)) }
	p := New(Options{EPS: 100000, Burst: 30, Clock: c})
	p.Restart()
	start := c.now
	rs := run(t, p, c, 30, 10*time.Second, nil)
	got := countIn(rs, start, start.Add(10*time.Second))
	if got > 900000 {
		t.Errorf("released %d records in 10 s with 0-1 ms oversleeps and no MaxLag; expected the schedule to restart and fall short", got)
	}
	if w := maxWindow(rs, time.Second); w > 100000+30 {
		t.Errorf("a 1 s window holds %d records, more than EPS+Burst", w)
	}
}

func TestFirstDatagramImmediateAfterRestart(t *testing.T) {
	c := newFakeClock()
	p := New(Options{EPS: 1000, Burst: 10, Clock: c})
	ctx := context.Background()
	for inv := range 3 {
		c.advance(time.Duration(inv) * time.Minute) // frozen between invocations
		p.Restart()
		want := []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}
		for i, w := range want {
			got, err := p.Wait(ctx, 10)
			if err != nil {
				t.Fatalf("invocation %d wait %d: %v", inv, i, err)
			}
			if got != w {
				t.Errorf("invocation %d wait %d: waited %v, want %v", inv, i, got, w)
			}
		}
	}
}

func TestRestartDropsCredit(t *testing.T) {
	// Restart right after a release: the schedule restarts now, so the
	// first batch of the new invocation goes at once but the one after
	// still waits a full interval (no burst from the previous schedule).
	c := newFakeClock()
	p := New(Options{EPS: 100, Burst: 1, Clock: c})
	ctx := context.Background()
	for range 5 {
		if _, err := p.Wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	p.Restart()
	if d, _ := p.Wait(ctx, 1); d != 0 {
		t.Errorf("first wait after Restart = %v, want 0", d)
	}
	if d, _ := p.Wait(ctx, 1); d != 10*time.Millisecond {
		t.Errorf("second wait after Restart = %v, want 10ms", d)
	}
}

func TestLag(t *testing.T) {
	// EPS 1000, Burst 10: one batch every 10 ms; one Burst interval is 10 ms.
	tests := []struct {
		name string
		gap  time.Duration // producer time after the second release
		want []time.Duration
	}{
		{name: "on time", gap: 0, want: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}},
		{name: "small lag caught up", gap: 15 * time.Millisecond, want: []time.Duration{0, 5 * time.Millisecond, 10 * time.Millisecond}},
		{name: "lag of exactly one interval caught up", gap: 20 * time.Millisecond, want: []time.Duration{0, 0, 10 * time.Millisecond}},
		{name: "idle gap restarts schedule", gap: 25 * time.Millisecond, want: []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond}},
		{name: "long idle restarts schedule", gap: 5 * time.Second, want: []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			p := New(Options{EPS: 1000, Burst: 10, Clock: c})
			ctx := context.Background()
			p.Restart()
			for range 2 {
				if _, err := p.Wait(ctx, 10); err != nil {
					t.Fatal(err)
				}
			}
			c.advance(tt.gap)
			for i, w := range tt.want {
				got, err := p.Wait(ctx, 10)
				if err != nil {
					t.Fatal(err)
				}
				if got != w {
					t.Errorf("wait %d after gap: waited %v, want %v", i, got, w)
				}
			}
		})
	}
}

func TestIdleGapNoBurst(t *testing.T) {
	c := newFakeClock()
	p := New(Options{EPS: 5000, Burst: 20, Clock: c})
	p.Restart()
	run(t, p, c, 20, time.Second, nil)
	c.advance(3 * time.Second)
	rs := run(t, p, c, 20, time.Second, nil)
	// After the gap, the released records follow a fresh schedule: the
	// first second holds exactly EPS records plus at most one batch.
	if got := countIn(rs, rs[0].at, rs[0].at.Add(time.Second)); got > 5000 {
		t.Errorf("after idle gap, first second released %d records, want <= 5000", got)
	}
	if rs[1].at.Sub(rs[0].at) != 4*time.Millisecond {
		t.Errorf("second batch after idle gap came %v after the first, want 4ms", rs[1].at.Sub(rs[0].at))
	}
}

func TestDeadline(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration // after the first release; release of the second is at +2ms
		wantErr  bool
	}{
		{name: "before release", deadline: time.Millisecond, wantErr: true},
		{name: "at release", deadline: 2 * time.Millisecond, wantErr: true},
		{name: "after release", deadline: 3 * time.Millisecond, wantErr: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			p := New(Options{EPS: 1000, Burst: 2, Clock: c})
			p.Restart()
			if _, err := p.Wait(context.Background(), 2); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithDeadline(context.Background(), c.now.Add(tt.deadline))
			defer cancel()
			waited, err := p.Wait(ctx, 2)
			if tt.wantErr {
				if !errors.Is(err, ErrDeadline) {
					t.Fatalf("err = %v, want ErrDeadline", err)
				}
				if c.sleeps != 0 || waited != 0 {
					t.Errorf("slept %d times (%v) before reporting the deadline, want no sleep", c.sleeps, waited)
				}
				// The refused batch is not counted: without a deadline
				// it is released at its original time.
				waited, err = p.Wait(context.Background(), 2)
				if err != nil || waited != 2*time.Millisecond {
					t.Errorf("retry without deadline: waited %v, err %v; want 2ms, nil", waited, err)
				}
				return
			}
			if err != nil || waited != 2*time.Millisecond {
				t.Errorf("waited %v, err %v; want 2ms, nil", waited, err)
			}
		})
	}
}

func TestDeadlineNotNeededWhenNoWait(t *testing.T) {
	c := newFakeClock()
	p := New(Options{EPS: 1000, Burst: 2, Clock: c})
	ctx, cancel := context.WithDeadline(context.Background(), c.now.Add(time.Microsecond))
	defer cancel()
	if _, err := p.Wait(ctx, 2); err != nil {
		t.Fatalf("first batch is due now, err = %v", err)
	}
}

func TestContextCancel(t *testing.T) {
	t.Run("during wait", func(t *testing.T) {
		sleeping := make(chan struct{})
		c := newFakeClock()
		c.block = sleeping
		p := New(Options{EPS: 1, Burst: 1, Clock: c})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if _, err := p.Wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := p.Wait(ctx, 1)
			errc <- err
		}()
		<-sleeping
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		for _, eps := range []float64{0, 1000} {
			c := newFakeClock()
			p := New(Options{EPS: eps, Clock: c})
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := p.Wait(ctx, 1); !errors.Is(err, context.Canceled) {
				t.Errorf("EPS %v: err = %v, want context.Canceled", eps, err)
			}
			if c.sleeps != 0 {
				t.Errorf("EPS %v: slept %d times", eps, c.sleeps)
			}
		}
	})
}

func TestUnlimitedNeverWaits(t *testing.T) {
	for _, eps := range []float64{0, -5, math.NaN(), math.Inf(1)} {
		c := newFakeClock()
		c.onCall = func(d time.Duration) { t.Errorf("EPS %v: Sleep(%v) called", eps, d) }
		p := New(Options{EPS: eps, Burst: 10, Clock: c})
		p.Restart()
		for range 10000 {
			if d, err := p.Wait(context.Background(), 10); d != 0 || err != nil {
				t.Fatalf("EPS %v: Wait = %v, %v; want 0, nil", eps, d, err)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	p := New(Options{EPS: 10})
	if _, ok := p.clock.(*systemClock); !ok {
		t.Errorf("default clock is %T, want system clock", p.clock)
	}
	if p.maxLag != 100*time.Millisecond {
		t.Errorf("catch-up limit with default Burst = %v, want 100ms (Burst 1)", p.maxLag)
	}
	p = New(Options{EPS: 1000, Burst: 10, MaxLag: time.Millisecond})
	if p.maxLag != 10*time.Millisecond {
		t.Errorf("catch-up limit with MaxLag below one Burst interval = %v, want 10ms", p.maxLag)
	}
}

func TestPerInstanceEPS(t *testing.T) {
	tests := []struct {
		agg  float64
		conc int
		want float64
	}{
		{agg: 10000, conc: 10, want: 1000},
		{agg: 10000, conc: 1, want: 10000},
		{agg: 10000, conc: 0, want: 10000},
		{agg: 10000, conc: -3, want: 10000},
		{agg: 10000, conc: 3, want: 10000.0 / 3},
		{agg: 0, conc: 10, want: 0},
		{agg: -1, conc: 10, want: 0},
		{agg: math.NaN(), conc: 10, want: 0},
		{agg: math.Inf(1), conc: 10, want: 0},
	}
	for _, tt := range tests {
		if got := PerInstanceEPS(tt.agg, tt.conc); got != tt.want {
			t.Errorf("PerInstanceEPS(%v, %d) = %v, want %v", tt.agg, tt.conc, got, tt.want)
		}
	}
}

func TestSystemClock(t *testing.T) {
	c := SystemClock()
	ctx, cancel := context.WithCancel(context.Background())
	if err := c.Sleep(ctx, time.Microsecond); err != nil {
		t.Fatalf("short sleep: %v", err)
	}
	cancel()
	if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep with cancelled ctx = %v, want context.Canceled", err)
	}
	// Cancellation during a long sleep, and concurrent sleeps (one falls
	// back to its own timer) both return promptly with ctx's error.
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 2)
	for range 2 {
		go func() { errc <- c.Sleep(ctx, time.Hour) }()
	}
	cancel()
	for range 2 {
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("sleep = %v, want context.Canceled", err)
		}
	}
}

func TestWaitDoesNotAllocate(t *testing.T) {
	c := newFakeClock()
	p := New(Options{EPS: 1e6, Burst: 10, Clock: c})
	ctx, cancel := context.WithDeadline(context.Background(), c.now.Add(24*time.Hour))
	defer cancel()
	if allocs := testing.AllocsPerRun(1000, func() {
		if _, err := p.Wait(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("Wait allocates %v times per call, want 0", allocs)
	}
}

var sink time.Duration

func BenchmarkWait(b *testing.B) {
	c := newFakeClock()
	p := New(Options{EPS: 1e5, Burst: 30, Clock: c})
	// A deadline far in fake time, so the deadline check runs every call.
	ctx, cancel := context.WithDeadline(context.Background(), c.now.Add(1000*time.Hour))
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		d, _ := p.Wait(ctx, 30)
		sink += d
	}
}

// BenchmarkPacerRealClock measures how closely the system clock achieves
// the target rate. It reports the achieved rate and the ratio to the target
// instead of asserting them, because real sleeps depend on the machine.
// Run with e.g. -benchtime=2s.
func BenchmarkPacerRealClock(b *testing.B) {
	for _, bc := range []struct {
		name  string
		eps   float64
		burst int
		lag   time.Duration
	}{
		{"eps=2000/burst=1", 2000, 1, 0},
		{"eps=5000/burst=20", 5000, 20, 0},
		{"eps=100000/burst=30", 100000, 30, 0},
		{"eps=100000/burst=30/maxlag=2ms", 100000, 30, 2 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := New(Options{EPS: bc.eps, Burst: bc.burst, MaxLag: bc.lag})
			ctx := context.Background()
			b.ReportAllocs()
			p.Restart()
			start := time.Now()
			for b.Loop() {
				if _, err := p.Wait(ctx, bc.burst); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			// The first batch is released at once, so N batches span N-1
			// intervals.
			if b.N > 1 {
				rate := float64((b.N-1)*bc.burst) / elapsed.Seconds()
				b.ReportMetric(rate, "records/s")
				b.ReportMetric(100*rate/bc.eps, "%target")
			}
		})
	}
}
