// Package udpsender hands IPFIX datagrams to the kernel over one connected
// UDP socket to the flow collector (QRadar/JSA listens on UDP 2055), and
// keeps that socket across warm Lambda invocations.
//
// # What UDP can and cannot tell us
//
// UDP gives no delivery guarantee and no acknowledgement. The only signal a
// sender gets is an ICMP error (port unreachable when the collector is not
// listening, host or network unreachable when the path is down), and on a
// connected socket the kernel reports that error asynchronously: a port
// unreachable caused by one datagram surfaces as ECONNREFUSED on a LATER
// write or read. Consequences:
//
//   - The write that fails with ECONNREFUSED did not send its datagram (the
//     kernel returns the pending error instead of sending), so Send retries
//     that same datagram.
//   - The datagram before it was probably refused by the collector, and we
//     cannot know which one or how many: Send had already reported success
//     for it, because it was handed to the kernel while the path looked
//     healthy. Losing one datagram at the start of an outage is inherent.
//
// What Send guarantees is therefore: it reports success only for a datagram
// the kernel accepted while the path looked healthy; a refused or
// unreachable path is detected, counted (Stats.SendErrors) and retried with
// capped, jittered exponential backoff, re-resolving the host each time
// (DNS may have moved the collector), until the datagram goes or ctx ends.
//
// # Probe after recovery
//
// After an error, the first datagram on the new socket is followed by a
// short probe: Send reads from the socket for up to Options.ProbeTimeout,
// so that an ICMP refusal of that very datagram is reported before Send
// returns. Collectors never answer over IPFIX/UDP, so a quiet probe means
// the path looks healthy. Without the probe, a retry loop against a dead
// port would report every other datagram as sent (each fresh socket accepts
// one write before the refusal arrives). The probe only sees refusals that
// arrive within ProbeTimeout (immediate on loopback, one round trip on a
// real network); a later one is caught by the next Send as usual. Healthy
// steady-state sends never probe and do not allocate.
//
// # Concurrency
//
// A Sender is meant to be owned by one goroutine; its methods are
// nonetheless safe for concurrent use: Send calls are serialised, and Close
// waits for an in-flight Send. Stats and LocalAddr never block.
package udpsender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultPort is the IPFIX/NetFlow port QRadar and JSA flow processors
// listen on.
const DefaultPort = 2055

// Defaults for Options.
const (
	DefaultInitialBackoff = 50 * time.Millisecond
	DefaultMaxBackoff     = 2 * time.Second
	DefaultProbeTimeout   = 20 * time.Millisecond
)

var (
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("udpsender: sender closed")
	// ErrEmptyDatagram is returned by Send for a zero-length datagram.
	ErrEmptyDatagram = errors.New("udpsender: empty datagram")
	// ErrInvalidOptions is wrapped by the errors New returns.
	ErrInvalidOptions = errors.New("udpsender: invalid options")
)

// Resolver looks up the collector's addresses; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configures a Sender. Zero values take the documented defaults.
type Options struct {
	Host           string        // hostname or IP literal (IPv4 or IPv6, brackets allowed); required
	Port           int           // default 2055; must be 1-65535 when set
	InitialBackoff time.Duration // first retry delay; default 50ms
	MaxBackoff     time.Duration // retry delay cap; default 2s
	// ProbeTimeout is how long Send listens for an ICMP refusal after the
	// first datagram on a socket opened to recover from an error; default
	// 20ms, negative disables the probe.
	ProbeTimeout time.Duration
	Resolver     Resolver     // default net.DefaultResolver; not used for IP literals
	Logger       *slog.Logger // default slog.Default()
}

// Stats counts what a Sender did since New. All counters only grow.
type Stats struct {
	Datagrams  uint64 // datagrams handed to the kernel and reported sent
	Bytes      uint64 // their total size
	SendErrors uint64 // failed attempts (resolve, dial, write or probe errors)
	Retries    uint64 // attempts made after a backoff
	Resolves   uint64 // resolver lookups (IP literals need none)
}

// Sender sends datagrams to one collector. Build it once at cold start.
type Sender struct {
	host           string
	literal        netip.Addr // valid if host is an IP literal
	port           uint16
	initialBackoff time.Duration
	maxBackoff     time.Duration
	probeTimeout   time.Duration
	lastLocal      netip.AddrPort // of the previous socket, re-bound on a re-dial
	lastRemote     netip.AddrPort
	sessions       atomic.Uint64
	resolver       Resolver
	log            *slog.Logger

	mu        sync.Mutex // guards the fields below and serialises Send
	conn      *net.UDPConn
	remote    netip.AddrPort
	addrIndex int  // which resolved address to dial: advanced after each error
	needProbe bool // the next socket follows an error: probe its first datagram
	failing   bool // in an outage (for logging the start and end once)
	closed    bool

	localAddr atomic.Pointer[net.UDPAddr]

	datagrams, bytes, sendErrors, retries, resolves atomic.Uint64
}

// New validates o and returns a Sender. It does not touch the network: the
// host is resolved and the socket dialled on the first Send.
func New(o Options) (*Sender, error) {
	host := o.Host
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if host == "" {
		return nil, fmt.Errorf("%w: empty host", ErrInvalidOptions)
	}
	s := &Sender{host: host}
	if a, err := netip.ParseAddr(host); err == nil {
		s.literal = a.Unmap()
	} else if _, _, err := net.SplitHostPort(host); err == nil {
		return nil, fmt.Errorf("%w: host %q must not include a port; set Port", ErrInvalidOptions, o.Host)
	} else if !validHostname(host) {
		return nil, fmt.Errorf("%w: host %q is neither an IP address nor a hostname", ErrInvalidOptions, o.Host)
	}
	switch {
	case o.Port == 0:
		s.port = DefaultPort
	case o.Port < 1 || o.Port > 65535:
		return nil, fmt.Errorf("%w: port %d out of range 1-65535", ErrInvalidOptions, o.Port)
	default:
		s.port = uint16(o.Port)
	}
	if o.InitialBackoff < 0 || o.MaxBackoff < 0 {
		return nil, fmt.Errorf("%w: negative backoff", ErrInvalidOptions)
	}
	s.initialBackoff = cmpOr(o.InitialBackoff, DefaultInitialBackoff)
	s.maxBackoff = cmpOr(o.MaxBackoff, DefaultMaxBackoff)
	if s.maxBackoff < s.initialBackoff {
		return nil, fmt.Errorf("%w: MaxBackoff %v is below InitialBackoff %v", ErrInvalidOptions, s.maxBackoff, s.initialBackoff)
	}
	s.probeTimeout = cmpOr(o.ProbeTimeout, DefaultProbeTimeout)
	s.resolver = o.Resolver
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	s.log = o.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("collector", net.JoinHostPort(host, strconv.Itoa(int(s.port))))
	return s, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// validHostname accepts DNS names loosely: letters, digits, '-', '_', '.'.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Send hands one datagram to the kernel; see the package documentation for
// what that guarantees. On an error it counts it, closes the socket, backs
// off (exponential, capped, jittered), re-resolves the host and retries
// until it succeeds or ctx is done; it then returns an error wrapping both
// ctx's error and the last send error. A ctx that is already done returns
// at once. Datagrams the kernel rejects as too large (EMSGSIZE) are not
// retried.
func (s *Sender) Send(ctx context.Context, datagram []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("udpsender: send: %w", err)
	}
	if len(datagram) == 0 {
		return ErrEmptyDatagram
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var lastErr error
	backoff := s.initialBackoff
	for attempt := 0; ; attempt++ {
		err := s.attempt(ctx, datagram)
		if err == nil {
			s.datagrams.Add(1)
			s.bytes.Add(uint64(len(datagram)))
			if s.failing {
				s.failing = false
				s.log.Info("udpsender: collector reachable again", "addr", s.remote.String(), "attempts", attempt+1)
			}
			return nil
		}
		s.sendErrors.Add(1)
		if errors.Is(err, syscall.EMSGSIZE) {
			// The datagram, not the path, is at fault: keep the socket.
			return fmt.Errorf("udpsender: %d-byte datagram: %w", len(datagram), err)
		}
		s.dropConn()
		s.addrIndex++ // a host with several addresses: try the next one
		s.needProbe = true
		lastErr = err
		wait := s.jitter(backoff)
		backoff = min(2*backoff, s.maxBackoff)
		if !s.failing {
			s.failing = true
			s.log.Warn("udpsender: send failed, retrying", "err", err, "retry_in", wait)
		} else {
			s.log.Debug("udpsender: send failed, retrying", "err", err, "retry_in", wait, "attempt", attempt+1)
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("udpsender: giving up on datagram after %d attempts: %w (last error: %w)", attempt+1, err, lastErr)
		}
		s.retries.Add(1)
	}
}

// attempt makes one try: dial if needed, write, and probe a socket that
// follows an error.
func (s *Sender) attempt(ctx context.Context, datagram []byte) error {
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return err
		}
	}
	n, err := s.conn.Write(datagram)
	if err != nil {
		return err // *net.OpError names the local and remote address
	}
	if n != len(datagram) {
		return fmt.Errorf("write to %s: %d of %d bytes: %w", s.remote, n, len(datagram), io.ErrShortWrite)
	}
	if s.needProbe {
		if err := s.probe(ctx); err != nil {
			return err
		}
		s.needProbe = false
	}
	return nil
}

func (s *Sender) dial(ctx context.Context) error {
	addr := s.literal
	if !addr.IsValid() {
		s.resolves.Add(1)
		addrs, err := s.resolver.LookupNetIP(ctx, "ip", s.host)
		if err != nil {
			return fmt.Errorf("resolve %s: %w", s.host, err)
		}
		if len(addrs) == 0 {
			return fmt.Errorf("resolve %s: no addresses", s.host)
		}
		// Keep the resolver's order (it reflects address selection
		// preferences); move on to the next address after each error.
		addr = addrs[s.addrIndex%len(addrs)].Unmap()
	}
	remote := netip.AddrPortFrom(addr, s.port)
	// Re-bind the previous local address and port when we can: the 5-tuple, and so the
	// IPFIX transport session, stays the same across a re-dial, and a collector that
	// keys templates on it keeps them.
	var conn *net.UDPConn
	var err error
	if last := s.lastLocal; last.IsValid() && last.Addr().Is4() == remote.Addr().Is4() {
		conn, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(last), net.UDPAddrFromAddrPort(remote))
	}
	if conn == nil {
		conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(remote))
	}
	if err != nil {
		return err
	}
	if la, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		local := la.AddrPort()
		if local != s.lastLocal || remote != s.lastRemote {
			s.sessions.Add(1)
		}
		s.lastLocal, s.lastRemote = local, remote
		s.localAddr.Store(la)
	}
	s.conn, s.remote = conn, remote
	return nil
}

// Session counts the transport sessions (local and remote address and port) this
// Sender has used; it changes when a re-dial could not keep the old one, after which
// the collector needs the templates again.
func (s *Sender) Session() uint64 { return s.sessions.Load() }

// probe listens briefly for an ICMP error caused by the datagram just
// written. A timeout means none arrived: the path looks healthy.
func (s *Sender) probe(ctx context.Context) error {
	d := s.probeTimeout
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline))
	}
	if d <= 0 {
		return nil
	}
	if err := s.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return fmt.Errorf("probe %s: %w", s.remote, err)
	}
	defer s.conn.SetReadDeadline(time.Time{}) //nolint:errcheck // the socket is closed on the next error anyway
	var buf [64]byte
	for {
		_, err := s.conn.Read(buf[:])
		switch {
		case err == nil:
			continue // a stray datagram from the collector: ignore it
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil
		default:
			return fmt.Errorf("probe after write: %w", err)
		}
	}
}

func (s *Sender) dropConn() {
	if s.conn != nil {
		s.conn.Close() //nolint:errcheck // nothing to do about a failed close of a broken socket
		s.conn = nil
	}
}

// jitter returns a delay in [d/2, d] ("equal jitter"), so that many Lambda
// instances do not retry in lockstep yet each waits at least half the
// backoff.
func (s *Sender) jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns a snapshot of the counters.
func (s *Sender) Stats() Stats {
	return Stats{
		Datagrams:  s.datagrams.Load(),
		Bytes:      s.bytes.Load(),
		SendErrors: s.sendErrors.Load(),
		Retries:    s.retries.Load(),
		Resolves:   s.resolves.Load(),
	}
}

// LocalAddr is the local address of the most recently dialled socket, nil
// before the first dial.
func (s *Sender) LocalAddr() net.Addr {
	if la := s.localAddr.Load(); la != nil {
		return la
	}
	return nil
}

// Close closes the socket; later Sends return ErrClosed. It waits for an
// in-flight Send and is idempotent.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if err != nil {
		return fmt.Errorf("udpsender: close: %w", err)
	}
	return nil
}
