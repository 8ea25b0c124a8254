package udpsender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var quiet = slog.New(slog.DiscardHandler)

// listen opens a collector on addr ("127.0.0.1:0" by default) and closes it
// when the test ends.
func listen(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func port(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// freePort reserves a port on 127.0.0.1 by listening and closing at once,
// so nothing listens on it.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := port(ln)
	ln.Close()
	return p
}

// recvUntil reads datagrams until one equals want; the 10 s read deadline
// only guards against a hung test.
func recvUntil(t *testing.T, ln *net.UDPConn, want []byte) {
	t.Helper()
	buf := make([]byte, 1<<16)
	for {
		if err := ln.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q: %v", trunc(want), err)
		}
		if bytes.Equal(buf[:n], want) {
			return
		}
	}
}

func trunc(b []byte) []byte { return b[:min(len(b), 32)] }

func newSender(t testing.TB, o Options) *Sender {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

func TestSendDelivers(t *testing.T) {
	tests := []struct {
		name         string
		listenAddr   string
		host         string
		wantResolves uint64
	}{
		{name: "ipv4 literal", listenAddr: "127.0.0.1:0", host: "127.0.0.1"},
		{name: "ipv6 literal", listenAddr: "[::1]:0", host: "::1"},
		{name: "bracketed ipv6 literal", listenAddr: "[::1]:0", host: "[::1]"},
		{name: "localhost via default resolver", listenAddr: "127.0.0.1:0", host: "localhost", wantResolves: 1},
	}
	sizes := []int{1, 48, 1400, 9000, 65507}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.listenAddr, "::1") {
				if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					c.Close()
				}
			}
			ln := listen(t, tt.listenAddr)
			s := newSender(t, Options{Host: tt.host, Port: port(ln)})
			if s.LocalAddr() != nil {
				t.Errorf("LocalAddr before the first Send = %v, want nil", s.LocalAddr())
			}
			if tt.host == "localhost" {
				// localhost may list several addresses (::1 first on
				// some systems); Send moves on after a refusal. Send
				// until the socket is on the listener's family.
				deadline := time.Now().Add(10 * time.Second)
				for s.LocalAddr() == nil || s.LocalAddr().(*net.UDPAddr).IP.To4() == nil {
					if time.Now().After(deadline) {
						t.Fatalf("localhost never resolved to IPv4; LocalAddr %v", s.LocalAddr())
					}
					if err := s.Send(context.Background(), []byte("warm-up")); err != nil {
						t.Fatal(err)
					}
				}
			}
			var total uint64
			for _, n := range sizes {
				dg := pattern(n)
				if err := s.Send(context.Background(), dg); err != nil {
					t.Fatalf("Send %d bytes: %v", n, err)
				}
				recvUntil(t, ln, dg)
				total += uint64(n)
			}
			st := s.Stats()
			if st.SendErrors != 0 || st.Retries != 0 {
				t.Errorf("Stats = %+v, want no errors or retries", st)
			}
			if tt.host != "localhost" && (st.Datagrams != uint64(len(sizes)) || st.Bytes != total) {
				t.Errorf("Stats = %+v, want %d datagrams, %d bytes", st, len(sizes), total)
			}
			if st.Resolves < tt.wantResolves || (tt.wantResolves == 0 && st.Resolves != 0) {
				t.Errorf("Resolves = %d, want %d", st.Resolves, tt.wantResolves)
			}
			if s.LocalAddr() == nil {
				t.Error("LocalAddr nil after Send")
			}
		})
	}
}

func TestSocketReusedAndSendDoesNotAllocate(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	go func() { // drain so the receive buffer never matters
		buf := make([]byte, 1<<16)
		for {
			if _, err := ln.Read(buf); err != nil {
				return
			}
		}
	}()
	s := newSender(t, Options{Host: "127.0.0.1", Port: port(ln)})
	dg := pattern(1400)
	ctx := context.Background()
	if err := s.Send(ctx, dg); err != nil {
		t.Fatal(err)
	}
	first := s.LocalAddr().String()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := s.Send(ctx, dg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Send allocates %v times per call, want 0", allocs)
	}
	if got := s.LocalAddr().String(); got != first {
		t.Errorf("LocalAddr changed from %s to %s: socket not reused", first, got)
	}
}

func TestClosedPortTimesOut(t *testing.T) {
	p := freePort(t)
	s := newSender(t, Options{Host: "127.0.0.1", Port: p, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// The first datagram on a fresh socket is accepted by the kernel; the
	// refusal it provokes surfaces on a later write. Send until Send fails.
	var err error
	for i := 0; err == nil; i++ {
		err = s.Send(ctx, fmt.Appendf(nil, "datagram %d", i))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want it to wrap and mention the refusal (ECONNREFUSED)", err)
	}
	st := s.Stats()
	if st.SendErrors == 0 || st.Retries == 0 {
		t.Errorf("Stats = %+v, want SendErrors and Retries > 0", st)
	}
}

func TestCollectorDownThenUp(t *testing.T) {
	p := freePort(t)
	s := newSender(t, Options{Host: "127.0.0.1", Port: p, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	var up atomic.Bool
	lnc := make(chan *net.UDPConn, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			t.Errorf("listen on reserved port %d: %v", p, err)
			close(lnc)
			return
		}
		up.Store(true)
		lnc <- ln
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Send until a datagram sent after the collector came up has gone, the
	// outage having been detected on the way. Typically: the first Send is
	// lost, the second is refused and retried until the listener exists.
	var last []byte
	var firstLocal net.Addr
	for i := 0; ; i++ {
		if i == 1 {
			firstLocal = s.LocalAddr()
		}
		wasUp := up.Load()
		last = fmt.Appendf(nil, "datagram %d", i)
		if err := s.Send(ctx, last); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		if wasUp && s.Stats().SendErrors > 0 {
			break
		}
	}
	ln, ok := <-lnc
	if !ok {
		return
	}
	defer ln.Close()
	recvUntil(t, ln, last)
	if st := s.Stats(); st.SendErrors == 0 || st.Retries == 0 {
		t.Errorf("Stats = %+v, want the outage counted and retried", st)
	}
	// The re-dials kept the local port: one transport session throughout.
	if s.LocalAddr().String() != firstLocal.String() || s.Session() != 1 {
		t.Errorf("local address %v then %v, session %d: want the same address and session 1", firstLocal, s.LocalAddr(), s.Session())
	}
}

// fakeResolver answers from a script, one step per lookup; the last step
// repeats.
type fakeResolver struct {
	mu    sync.Mutex
	steps []func() ([]netip.Addr, error)
	calls int
}

func (r *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	step := r.steps[min(r.calls, len(r.steps)-1)]
	r.calls++
	return step()
}

func (r *fakeResolver) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func TestReresolveAfterError(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs all of 127.0.0.0/8 on loopback (Linux)")
	}
	live := netip.MustParseAddr("127.0.0.1")
	dead := netip.MustParseAddr("127.0.0.2") // loopback, but nothing listens there on this port
	addrs := func(a ...netip.Addr) func() ([]netip.Addr, error) {
		return func() ([]netip.Addr, error) { return a, nil }
	}
	fail := func() ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "server misbehaving", Name: "collector.example", IsTemporary: true}
	}
	tests := []struct {
		name       string
		steps      []func() ([]netip.Addr, error)
		wantErrors bool
	}{
		{name: "dead address first, then the live one", steps: []func() ([]netip.Addr, error){addrs(dead), addrs(live)}, wantErrors: true},
		{name: "lookup error first", steps: []func() ([]netip.Addr, error){fail, addrs(live)}, wantErrors: true},
		{name: "no addresses first", steps: []func() ([]netip.Addr, error){addrs(), addrs(live)}, wantErrors: true},
		{name: "dead then live in one answer", steps: []func() ([]netip.Addr, error){addrs(dead, live)}, wantErrors: true},
		{name: "mapped ipv4", steps: []func() ([]netip.Addr, error){addrs(netip.AddrFrom16(live.As16()))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t, "127.0.0.1:0")
			r := &fakeResolver{steps: tt.steps}
			s := newSender(t, Options{Host: "collector.example", Port: port(ln), Resolver: r, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// Send until a datagram started after the dead path was
			// detected (and so went to the live address) has gone.
			var last []byte
			for i := 0; ; i++ {
				errsBefore := s.Stats().SendErrors
				last = fmt.Appendf(nil, "datagram %d", i)
				if err := s.Send(ctx, last); err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
				if !tt.wantErrors || errsBefore > 0 {
					break
				}
			}
			recvUntil(t, ln, last)
			st := s.Stats()
			if st.Resolves != uint64(r.Calls()) {
				t.Errorf("Resolves = %d, resolver saw %d lookups", st.Resolves, r.Calls())
			}
			if tt.wantErrors && (st.Resolves < 2 || st.SendErrors == 0 || st.Retries == 0) {
				t.Errorf("Stats = %+v, want Resolves >= 2 and the failure counted and retried", st)
			}
		})
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{name: "empty host", o: Options{}},
		{name: "empty brackets", o: Options{Host: "[]"}},
		{name: "host with port", o: Options{Host: "collector.example:2055"}},
		{name: "ipv4 with port", o: Options{Host: "10.0.0.1:2055"}},
		{name: "bad characters", o: Options{Host: "collector example"}},
		{name: "negative port", o: Options{Host: "10.0.0.1", Port: -1}},
		{name: "port too large", o: Options{Host: "10.0.0.1", Port: 65536}},
		{name: "negative backoff", o: Options{Host: "10.0.0.1", InitialBackoff: -time.Second}},
		{name: "max below initial", o: Options{Host: "10.0.0.1", InitialBackoff: time.Second, MaxBackoff: time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.o)
			if !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("New(%+v) = %v, %v; want ErrInvalidOptions", tt.o, s, err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	tests := []struct {
		name     string
		o        Options
		wantPort uint16
	}{
		{name: "port 0 means 2055", o: Options{Host: "10.0.0.1"}, wantPort: 2055},
		{name: "explicit port", o: Options{Host: "collector.example", Port: 4739}, wantPort: 4739},
		{name: "max port", o: Options{Host: "fd00::1", Port: 65535}, wantPort: 65535},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.port != tt.wantPort || s.initialBackoff != DefaultInitialBackoff || s.maxBackoff != DefaultMaxBackoff ||
				s.probeTimeout != DefaultProbeTimeout || s.resolver == nil || s.log == nil {
				t.Errorf("defaults not applied: %+v", s)
			}
			if s.LocalAddr() != nil || s.Stats() != (Stats{}) {
				t.Errorf("New touched the network: LocalAddr %v, Stats %+v", s.LocalAddr(), s.Stats())
			}
		})
	}
}

func TestCancelledContextReturnsAtOnce(t *testing.T) {
	r := &fakeResolver{steps: []func() ([]netip.Addr, error){func() ([]netip.Addr, error) {
		t.Error("resolver called with a cancelled context")
		return nil, errors.New("unexpected")
	}}}
	s := newSender(t, Options{Host: "collector.example", Resolver: r})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if st := s.Stats(); st != (Stats{}) || s.LocalAddr() != nil {
		t.Errorf("Stats %+v, LocalAddr %v; want nothing done", st, s.LocalAddr())
	}
}

func TestPermanentErrors(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	s := newSender(t, Options{Host: "127.0.0.1", Port: port(ln)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("empty datagram", func(t *testing.T) {
		if err := s.Send(ctx, nil); !errors.Is(err, ErrEmptyDatagram) {
			t.Errorf("err = %v, want ErrEmptyDatagram", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		before := s.Stats()
		err := s.Send(ctx, make([]byte, 70000))
		if !errors.Is(err, syscall.EMSGSIZE) {
			t.Fatalf("err = %v, want EMSGSIZE", err)
		}
		if st := s.Stats(); st.Retries != before.Retries || st.SendErrors != before.SendErrors+1 {
			t.Errorf("Stats %+v after %+v: want one error and no retry", st, before)
		}
		// The socket is kept for normal datagrams.
		la := s.LocalAddr().String()
		if err := s.Send(ctx, []byte("after")); err != nil {
			t.Fatal(err)
		}
		if got := s.LocalAddr().String(); got != la {
			t.Errorf("socket replaced after EMSGSIZE: %s -> %s", la, got)
		}
		recvUntil(t, ln, []byte("after"))
	})
	t.Run("closed", func(t *testing.T) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if err := s.Send(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Send after Close = %v, want ErrClosed", err)
		}
	})
}

func TestJitter(t *testing.T) {
	s := newSender(t, Options{Host: "10.0.0.1"})
	for _, d := range []time.Duration{time.Nanosecond, 50 * time.Millisecond, 2 * time.Second} {
		for range 1000 {
			if j := s.jitter(d); j < d/2 || j > d {
				t.Fatalf("jitter(%v) = %v, want within [%v, %v]", d, j, d/2, d)
			}
		}
	}
}

func BenchmarkSend(b *testing.B) {
	ln := listen(b, "127.0.0.1:0")
	go func() {
		buf := make([]byte, 1<<16)
		for {
			if _, err := ln.Read(buf); err != nil {
				return
			}
		}
	}()
	for _, size := range []int{100, 1400} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			s := newSender(b, Options{Host: "127.0.0.1", Port: port(ln)})
			dg := pattern(size)
			ctx := context.Background()
			if err := s.Send(ctx, dg); err != nil { // dial outside the timed loop
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if err := s.Send(ctx, dg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
