package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"
)

// Relay is a UDP hop in front of goflow2 for unpaced bursts. goflow2 cannot set its
// socket's receive buffer, and on this kind of machine the default buffer (about
// 200 KB, some 50 to 90 datagrams) overflows when a sender bursts 25,000 datagrams a
// second on loopback: the kernel drops them before goflow2 reads them. A production
// collector has a tuned receive buffer; the relay stands in for it. It reads into
// preallocated memory in a tight loop (no allocation, so no GC pauses), keeps every
// datagram byte for byte with its arrival time, checks that each one is a whole IPFIX
// message (the header's length equals the datagram's), and forwards them unchanged, in
// order, at a rate goflow2 can decode, from one socket (one exporter address, as the
// product's own socket is one).
type Relay struct {
	Port int
	in   *net.UDPConn
	out  *net.UDPConn

	mu        sync.Mutex
	datagrams []relayed
	bad       []string
	arrived   chan struct{}
	done      chan struct{}
}

type relayed struct {
	at   time.Time
	data []byte
}

// startRelay listens on a free port and forwards to 127.0.0.1:to at perSecond datagrams.
func startRelay(ctx context.Context, to int, perSecond int) (*Relay, error) {
	in, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = in.SetReadBuffer(8 << 20) // capped by net.core.rmem_max; the tight loop does the rest
	out, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: to})
	if err != nil {
		in.Close()
		return nil, err
	}
	r := &Relay{Port: in.LocalAddr().(*net.UDPAddr).Port, in: in, out: out, arrived: make(chan struct{}, 1), done: make(chan struct{})}
	go r.read()
	go r.forward(ctx, perSecond)
	return r, nil
}

func (r *Relay) read() {
	arena := make([]byte, 128<<20) // 128 MiB: every datagram of a run, without allocating
	off := 0
	for {
		if len(arena)-off < 65536 {
			arena, off = make([]byte, 128<<20), 0
		}
		n, err := r.in.Read(arena[off : off+65536])
		if err != nil {
			return // closed
		}
		d := arena[off : off+n : off+n]
		off += n
		now := time.Now()
		r.mu.Lock()
		r.datagrams = append(r.datagrams, relayed{now, d})
		if n < 16 || int(binary.BigEndian.Uint16(d[2:4])) != n || binary.BigEndian.Uint16(d[0:2]) != 10 {
			r.bad = append(r.bad, fmt.Sprintf("datagram %d: %d bytes, IPFIX header says version %d length %d",
				len(r.datagrams), n, binary.BigEndian.Uint16(d[0:2]), binary.BigEndian.Uint16(d[2:4])))
		}
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
	}
}

func (r *Relay) forward(ctx context.Context, perSecond int) {
	defer close(r.done)
	interval := time.Second / time.Duration(perSecond)
	next := 0
	for {
		r.mu.Lock()
		pending := r.datagrams[next:]
		r.mu.Unlock()
		if len(pending) == 0 {
			select {
			case <-r.arrived:
				continue
			case <-ctx.Done():
				return
			}
		}
		for _, d := range pending {
			if _, err := r.out.Write(d.data); err != nil {
				r.mu.Lock()
				r.bad = append(r.bad, "forwarding: "+err.Error())
				r.mu.Unlock()
			}
			next++
			select {
			case <-time.After(interval):
			case <-ctx.Done():
				return
			}
		}
	}
}

// Received returns how many datagrams arrived, and the problems seen.
func (r *Relay) Received() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.datagrams), append([]string(nil), r.bad...)
}

// Close stops the relay.
func (r *Relay) Close() {
	r.in.Close()
	r.out.Close()
}
