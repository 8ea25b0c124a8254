package objectreader

import (
	"errors"
	"io"
	"sync"
)

// Read-ahead: gunzip is the floor of this job's CPU cost, and it is serial. Running it in
// its own goroutine lets a second core parse, encode and send the text while the next
// chunks are decompressed, so an unpaced replay costs about max(gunzip, the rest) instead
// of their sum.
//
// The goroutine fills fixed chunks from a small ring (readAheadChunks of readAheadChunkBytes):
// memory stays bounded whatever the object's size, and the chunks are pooled across objects.
// Errors keep their place in the stream: the bytes decompressed before a failure are
// delivered first, then the failure, exactly as a direct read would deliver them.
// Close stops the goroutine and waits for it, so none outlives its reader.
const (
	readAheadChunkBytes = 128 << 10
	readAheadChunks     = 4
)

type chunk struct {
	buf  [readAheadChunkBytes]byte
	data []byte // the unread part of buf
	err  error  // what the source returned after data: io.EOF or a failure
}

var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

// errClosed is returned by Read after Close.
var errClosed = errors.New("objectreader: read after close")

type readAhead struct {
	full   chan *chunk   // filled chunks, in stream order
	free   chan *chunk   // chunks to fill
	done   chan struct{} // closed by Close: the producer stops
	exited chan struct{} // closed by the producer when it returns

	cur      *chunk
	err      error     // sticky: the source's error, once every byte before it was read
	body     io.Closer // closed before waiting for the producer, to release a blocked read
	after    io.Closer // closed once the producer has returned (it is not safe concurrently)
	closed   bool
	released bool // the chunks are back in the pool
}

// newReadAhead starts reading src in a goroutine. Closing the result stops it: body is
// closed first (src reads from it), then the producer is waited for, then after is closed.
func newReadAhead(src io.Reader, body, after io.Closer) *readAhead {
	ra := &readAhead{
		full:   make(chan *chunk, readAheadChunks),
		free:   make(chan *chunk, readAheadChunks),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		body:   body,
		after:  after,
	}
	for range readAheadChunks {
		ra.free <- chunkPool.Get().(*chunk)
	}
	go ra.produce(src)
	return ra
}

// produce fills free chunks from src and queues them until src ends or Close.
// The full channel holds every chunk, so queueing never blocks.
func (ra *readAhead) produce(src io.Reader) {
	defer close(ra.exited)
	for {
		var c *chunk
		select {
		case c = <-ra.free:
		case <-ra.done:
			return
		}
		n, err := fill(src, c.buf[:], ra.done)
		c.data, c.err = c.buf[:n], err
		ra.full <- c
		if err != nil {
			return
		}
	}
}

// fill reads into buf until it is full, src fails or ends, or done is closed. It does not
// turn a clean end into io.ErrUnexpectedEOF, as io.ReadFull would: that error means a
// truncated gzip stream here.
func fill(src io.Reader, buf []byte, done <-chan struct{}) (int, error) {
	n := 0
	for n < len(buf) {
		select {
		case <-done:
			return n, errClosed
		default:
		}
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (ra *readAhead) Read(p []byte) (int, error) {
	if ra.closed {
		return 0, errClosed
	}
	for {
		if c := ra.cur; c != nil {
			if len(c.data) > 0 {
				n := copy(p, c.data)
				c.data = c.data[n:]
				return n, nil
			}
			ra.cur = nil
			if c.err != nil {
				// The producer has returned or is returning: it queued its last chunk.
				ra.err = c.err
				ra.free <- c
				ra.release()
				return 0, ra.err
			}
			ra.free <- c // never blocks: free holds every chunk
		}
		if ra.err != nil {
			return 0, ra.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		ra.cur = <-ra.full
	}
}

// Close stops the producer and waits for it, returns the chunks to the pool and closes
// the body and the decompressor. The body is closed before the wait, so a producer
// blocked reading a network body is released.
func (ra *readAhead) Close() error {
	if ra.closed {
		return nil
	}
	ra.closed = true
	close(ra.done)
	bodyErr := ra.body.Close()
	<-ra.exited
	afterErr := ra.after.Close()
	if ra.cur != nil {
		ra.free <- ra.cur
		ra.cur = nil
	}
	ra.release()
	return errors.Join(afterErr, bodyErr)
}

// release returns every chunk to the pool, once the producer has queued its last one:
// at the end of the stream, or in Close after it returned. A reader read to its end
// gives its chunks back even if the caller never closes it.
func (ra *readAhead) release() {
	if ra.released {
		return
	}
	ra.released = true
	for range readAheadChunks {
		var c *chunk
		select {
		case c = <-ra.free:
		case c = <-ra.full:
		}
		c.data, c.err = nil, nil
		chunkPool.Put(c)
	}
}
