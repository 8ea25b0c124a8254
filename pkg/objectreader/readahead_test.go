package objectreader

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// bigText is deterministic text of several read-ahead chunks.
func bigText(lines int) []byte {
	var b bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&b, "2 123456789012 eni-0123456789abcdef0 10.0.%d.%d 10.1.%d.%d %d 443 6 %d %d 1796313900 1796313960 ACCEPT OK\n",
			i>>8&255, i&255, i>>8&255, i&255, 1024+i%60000, 1+i%100, 40+i*13%100000)
	}
	return b.Bytes()
}

func gzipBytes(text []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(text)
	w.Close()
	return b.Bytes()
}

// trackingBody records Close and can block reads until it is closed, as a stalled
// network body would.
type trackingBody struct {
	r       io.Reader
	block   chan struct{} // non-nil: Read blocks until Close
	mu      sync.Mutex
	closed  bool
	closing chan struct{}
}

func newBody(data []byte, block bool) *trackingBody {
	b := &trackingBody{r: bytes.NewReader(data), closing: make(chan struct{})}
	if block {
		b.block = make(chan struct{})
	}
	return b
}

func (b *trackingBody) Read(p []byte) (int, error) {
	if b.block != nil {
		select {
		case <-b.closing:
			return 0, errors.New("read on closed body")
		case <-b.block:
		}
	}
	return b.r.Read(p)
}

func (b *trackingBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.closing)
	}
	return nil
}

// exited reports whether rc's producer goroutine has returned, without waiting.
func exited(t *testing.T, rc io.ReadCloser) bool {
	t.Helper()
	ra, ok := rc.(*readAhead)
	if !ok {
		t.Fatalf("Decompress returned %T, want the read-ahead reader", rc)
	}
	select {
	case <-ra.exited:
		return true
	default:
		return false
	}
}

func TestReadAheadWhole(t *testing.T) {
	text := bigText(30000) // about 3 MB: many chunks, several ring turns
	for _, bufSize := range []int{1, 100, 4096, 1 << 20} {
		t.Run(fmt.Sprint(bufSize), func(t *testing.T) {
			body := newBody(gzipBytes(text), false)
			rc, gz, err := Decompress(body)
			if err != nil || !gz {
				t.Fatalf("gzip=%v err=%v", gz, err)
			}
			got, err := io.ReadAll(bufioOf(rc, bufSize))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, text) {
				t.Fatalf("got %d bytes, want %d", len(got), len(text))
			}
			if n, err := rc.Read(make([]byte, 10)); n != 0 || err != io.EOF {
				t.Errorf("Read after EOF: %d, %v", n, err)
			}
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}
			if !exited(t, rc) || !body.closed {
				t.Errorf("after Close: producer exited %v, body closed %v", exited(t, rc), body.closed)
			}
			if _, err := rc.Read(make([]byte, 10)); err == nil {
				t.Error("Read after Close succeeded")
			}
			if err := rc.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// bufioOf reads rc through reads of size n, as different consumers would.
func bufioOf(r io.Reader, n int) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		if len(p) > n {
			p = p[:n]
		}
		return r.Read(p)
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestReadAheadCorrupt: every byte decompressed before the damage arrives first, then
// ErrCorrupt, as a direct read of the gzip stream delivers them.
func TestReadAheadCorrupt(t *testing.T) {
	text := bigText(30000)
	whole := gzipBytes(text)
	truncated := whole[:len(whole)/2]
	badCRC := bytes.Clone(whole)
	badCRC[len(badCRC)-8] ^= 0xff // CRC-32 in the trailer
	flipped := bytes.Clone(whole)
	flipped[len(flipped)/2] ^= 0xff
	for name, data := range map[string][]byte{"truncated": truncated, "bad crc": badCRC, "flipped": flipped} {
		t.Run(name, func(t *testing.T) {
			rc, _, err := Decompress(newBody(data, false))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v, want ErrCorrupt", err)
			}
			// What a direct, single-goroutine read of the same stream yields.
			zr, _ := kgzip.NewReader(bytes.NewReader(data))
			want, _ := io.ReadAll(zr)
			if !bytes.Equal(got, want) {
				t.Errorf("%d bytes before the error, a direct read gives %d", len(got), len(want))
			}
			if _, again := rc.Read(make([]byte, 1)); !errors.Is(again, ErrCorrupt) {
				t.Errorf("error not sticky: %v", again)
			}
		})
	}
}

// TestReadAheadBodyError: a failing source (a reset connection) surfaces unchanged.
func TestReadAheadBodyError(t *testing.T) {
	whole := gzipBytes(bigText(30000))
	boom := errors.New("connection reset")
	body := io.NopCloser(io.MultiReader(bytes.NewReader(whole[:len(whole)/3]), readerFunc(func([]byte) (int, error) { return 0, boom })))
	rc, _, err := Decompress(body)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v, want the body's error and not ErrCorrupt", err)
	}
}

// TestReadAheadEarlyClose: a consumer that stops half-way (a send failure, the deadline)
// closes the reader; the producer, blocked on a full ring, returns.
func TestReadAheadEarlyClose(t *testing.T) {
	body := newBody(gzipBytes(bigText(30000)), false)
	rc, _, err := Decompress(body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if !exited(t, rc) || !body.closed {
		t.Fatal("Close returned before the producer did")
	}
}

// TestReadAheadCloseReleasesBlockedRead: the producer is stuck in a body read that only
// Close ends (a stalled S3 stream); Close closes the body first, so it returns.
func TestReadAheadCloseReleasesBlockedRead(t *testing.T) {
	whole := gzipBytes(bigText(3000))
	// The gzip header is read in Decompress; then the body stalls.
	stall := &trackingBody{closing: make(chan struct{}), block: make(chan struct{})}
	stall.r = bytes.NewReader(whole[20:])
	body := struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(whole[:20]), stall), stall}
	rc, _, err := Decompress(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if !exited(t, rc) {
		t.Fatal("producer still running after Close")
	}
}

// TestReadAheadConcurrentReaders: pooled chunks are never shared between live readers.
func TestReadAheadConcurrentReaders(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 4 {
		text := bigText(5000 + 1000*i)
		obj := gzipBytes(text)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				rc, _, err := Decompress(newBody(obj, false))
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, text) {
					t.Errorf("reader %d: %d bytes, %v", i, len(got), err)
				}
			}
		}()
	}
	wg.Wait()
}
