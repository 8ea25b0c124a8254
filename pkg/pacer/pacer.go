// Package pacer spaces flow records evenly in time so that the UDP sender
// never exceeds the collector's events-per-second (EPS) licence or throttle.
//
// # Contract
//
// EPS counts flow records per second on the wire, not datagrams. A Pacer
// keeps a virtual schedule: a batch of n records (one datagram's worth) is
// released at the virtual time t, and the next batch at t + n/EPS. The
// schedule is computed from the number of records released since it began,
// release = start + count·1e9/EPS nanoseconds, rather than by adding rounded
// intervals, so long runs do not drift.
//
//   - Smooth, no initial burst: after Restart the first datagram goes at once,
//     the next n/EPS later, and so on. A Pacer never releases a batch before
//     its scheduled time.
//   - Bounded catch-up: if the sender falls behind schedule (the sleep
//     overslept, the producer was slow) by at most one Burst interval
//     (Burst/EPS), the schedule is kept and the lost time is caught up by
//     releasing the following batches without waiting. This is what keeps
//     high rates such as 100,000 EPS exact despite coarse sleep granularity.
//   - No catch-up after idle: if the sender falls further behind than one
//     Burst interval, the schedule restarts at the current time.
//
// With batches of n = Burst records these rules mean that any interval of
// length W holds at most EPS·W + Burst records, and the long-run rate equals
// EPS. Batches smaller than Burst keep the long-run rate; batches larger than
// Burst are allowed and simply take proportionally longer.
//
// # Sleep granularity
//
// Catch-up keeps the rate exact only while a typical oversleep is shorter
// than one Burst interval. Go timers on Linux often oversleep by 0.1 to 1 ms
// (more under gVisor or CPU throttling), so at 100,000 EPS with 30 records
// a datagram (a 300 µs interval) many sleeps exceed the interval, the
// schedule restarts and the achieved rate falls well short (about half in
// BenchmarkPacerRealClock on a gVisor sandbox). Options.MaxLag widens the
// catch-up limit for such cases, at the price of a looser bound: any
// interval of length W then holds at most EPS·(W + MaxLag) + Burst records.
//
// A Lambda execution environment is frozen between invocations, so no credit
// may be carried across a freeze: call Restart at the start of every
// invocation.
//
// Wait never sleeps into a context deadline: if the release time is not
// before the deadline it returns at once with an error wrapping ErrDeadline,
// leaving the caller time to report what it has not sent.
//
// A Pacer is owned by one goroutine (the sender) and is not safe for
// concurrent use. Wait does not allocate.
package pacer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ErrDeadline is wrapped by the error Wait returns when the next release
// time is not before the context's deadline.
var ErrDeadline = errors.New("pacer: release time is past the context deadline")

// Clock is the time source; tests pass a fake.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done (returns ctx.Err() then).
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock returns a Clock backed by the time package. Each call returns
// a new clock that reuses one timer, so sequential Sleeps do not allocate;
// concurrent Sleeps are safe and fall back to a fresh timer.
func SystemClock() Clock {
	return &systemClock{}
}

type systemClock struct {
	mu    sync.Mutex
	timer *time.Timer
}

func (*systemClock) Now() time.Time { return time.Now() }

func (c *systemClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	if !c.mu.TryLock() {
		t := time.NewTimer(d)
		defer t.Stop()
		return sleepOn(ctx, t)
	}
	defer c.mu.Unlock()
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		// Since Go 1.23 Reset discards any stale expiry, so the timer can
		// be reused without draining its channel.
		c.timer.Reset(d)
	}
	defer c.timer.Stop()
	return sleepOn(ctx, c.timer)
}

func sleepOn(ctx context.Context, t *time.Timer) error {
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Options configures a Pacer.
type Options struct {
	// EPS is the records per second for this instance. 0 (or any value that
	// is not a positive finite number) means unlimited: Wait never waits.
	EPS float64
	// Burst is the number of records one datagram can hold: the most the
	// pacer lets the sender run ahead of an even stream. Default 1 if <= 0.
	Burst int
	// Clock defaults to SystemClock().
	Clock Clock
	// MaxLag is how far the sender may fall behind the schedule and still
	// catch up; further behind, the schedule restarts. The limit is the
	// larger of MaxLag and one Burst interval (Burst/EPS), so the default 0
	// gives the contract in the package documentation. Set it to about the
	// clock's worst sleep overshoot (e.g. 2ms) when one Burst interval is
	// shorter than that.
	MaxLag time.Duration
}

// PerInstanceEPS splits an aggregate EPS budget over the maximum number of
// concurrent instances: aggregate / max(1, maxConcurrency). An aggregate
// that is not a positive finite number gives 0 (unlimited).
func PerInstanceEPS(aggregateEPS float64, maxConcurrency int) float64 {
	if !(aggregateEPS > 0) || math.IsInf(aggregateEPS, 0) {
		return 0
	}
	return aggregateEPS / float64(max(1, maxConcurrency))
}

// Pacer releases batches of records on an even schedule; see the package
// documentation for the contract.
type Pacer struct {
	clock     Clock
	unlimited bool
	nsPerRec  float64       // 1e9 / EPS
	maxLag    time.Duration // max(Burst/EPS, Options.MaxLag): the most the sender may lag before the schedule restarts

	started bool
	start   time.Time // schedule origin
	count   uint64    // records released since start
}

// New returns a Pacer. Its schedule starts at the first Wait or Restart.
func New(o Options) *Pacer {
	if o.Burst <= 0 {
		o.Burst = 1
	}
	if o.Clock == nil {
		o.Clock = SystemClock()
	}
	p := &Pacer{clock: o.Clock}
	if !(o.EPS > 0) || math.IsInf(o.EPS, 0) {
		p.unlimited = true
		return p
	}
	p.nsPerRec = 1e9 / o.EPS
	p.maxLag = max(o.MaxLag, time.Duration(math.Round(float64(o.Burst)*p.nsPerRec)))
	return p
}

// Restart begins a fresh schedule at Clock.Now(): the next batch goes at
// once. Call it at the start of every invocation.
func (p *Pacer) Restart() {
	p.restartAt(p.clock.Now())
}

func (p *Pacer) restartAt(now time.Time) {
	p.started = true
	p.start = now
	p.count = 0
}

// release is the scheduled time of the next batch.
func (p *Pacer) release() time.Time {
	return p.start.Add(time.Duration(math.Round(float64(p.count) * p.nsPerRec)))
}

// Wait blocks until n more records (one datagram's worth, normally
// n <= Burst) may be sent, and returns how long it waited.
//
// If ctx is already done, or ends during the wait, Wait returns an error
// wrapping ctx.Err(). If ctx has a deadline that is not after the release
// time, Wait returns at once with an error wrapping ErrDeadline. On error
// the batch is not counted as released. n <= 0 returns at once.
func (p *Pacer) Wait(ctx context.Context, n int) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("pacer: %w", err)
	}
	if p.unlimited || n <= 0 {
		return 0, nil
	}
	now := p.clock.Now()
	if !p.started {
		p.restartAt(now)
	}
	release := p.release()
	if now.Sub(release) > p.maxLag {
		// Behind by more than one Burst interval (idle gap, long stall):
		// no catch-up burst, start over now.
		p.restartAt(now)
		release = now
	}
	if !release.After(now) {
		p.count += uint64(n)
		return 0, nil
	}
	if deadline, ok := ctx.Deadline(); ok && !release.Before(deadline) {
		return 0, fmt.Errorf("pacer: %d records due at %s, deadline %s: %w",
			n, release.Format(time.RFC3339Nano), deadline.Format(time.RFC3339Nano), ErrDeadline)
	}
	err := p.clock.Sleep(ctx, release.Sub(now))
	waited := p.clock.Now().Sub(now)
	if err != nil {
		return waited, fmt.Errorf("pacer: wait interrupted: %w", err)
	}
	p.count += uint64(n)
	return waited, nil
}
