// Package objectreader opens flow log objects as streams of text: from S3 (GetObject,
// streamed, never buffered whole) or from local files, and decompresses gzip when the
// data starts with the gzip magic bytes, whatever the key is called.
package objectreader

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// GetObjectAPI is the one S3 call this package makes.
type GetObjectAPI interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// Sentinel errors the caller may want to tell apart; all are wrapped with context.
var (
	ErrNotFound     = errors.New("object not found")
	ErrAccessDenied = errors.New("access denied")
	ErrCredentials  = errors.New("S3 rejected the credentials")
	ErrCorrupt      = errors.New("corrupt compressed data")
	// ErrChanged: the object is no longer the one a checkpoint was taken in (another ETag).
	ErrChanged = errors.New("object changed since the checkpoint")
)

// Info describes an opened object.
type Info struct {
	ETag      string
	VersionID string
	Size      int64 // -1 when unknown
	Gzip      bool
}

// S3 opens objects through GetObject.
type S3 struct {
	Client GetObjectAPI
}

// Open streams s3://bucket/key (the given version when versionID is set), decompressed.
// With ifMatch (an ETag), an object that has another ETag now fails with ErrChanged.
// Close the result to release the HTTP body.
func (s S3) Open(ctx context.Context, bucket, key, versionID, ifMatch string) (io.ReadCloser, Info, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := s.Client.GetObject(ctx, in)
	if err != nil {
		return nil, Info{}, fmt.Errorf("s3://%s/%s: %w", bucket, key, classify(err))
	}
	info := Info{ETag: aws.ToString(out.ETag), VersionID: aws.ToString(out.VersionId), Size: -1}
	if out.ContentLength != nil {
		info.Size = *out.ContentLength
	}
	rc, gz, err := Decompress(out.Body)
	if err != nil {
		out.Body.Close()
		return nil, info, fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
	}
	info.Gzip = gz
	return rc, info, nil
}

// classify wraps S3 API errors in the sentinels above, keeping the original.
func classify(err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "PreconditionFailed":
			return fmt.Errorf("%w: %w", ErrChanged, err)
		case "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchVersion":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case "AccessDenied", "Forbidden", "AllAccessDisabled":
			return fmt.Errorf("%w (check the function's role, the bucket policy and ASSUME_ROLE_ARN): %w", ErrAccessDenied, err)
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired":
			return fmt.Errorf("%w: %w", ErrCredentials, err)
		}
	}
	return err
}

// OpenFile opens a local file, decompressed.
func OpenFile(path string) (io.ReadCloser, Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Info{}, err
	}
	info := Info{Size: -1}
	if st, err := f.Stat(); err == nil {
		info.Size = st.Size()
	}
	rc, gz, err := Decompress(f)
	if err != nil {
		f.Close()
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	info.Gzip = gz
	return rc, info, nil
}

// Decompress returns a reader of body's text: gunzipped when body starts with the gzip
// magic bytes (1f 8b), as is otherwise. Gunzip runs ahead in its own goroutine (see
// readahead.go); the result is for one goroutine, and it must be closed, which stops
// that goroutine and closes body.
func Decompress(body io.ReadCloser) (io.ReadCloser, bool, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("reading: %w", err)
	}
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return readCloser{Reader: br, closer: body}, false, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, true, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return newReadAhead(gzipErrors{zr}, body, zr), true, nil
}

type readCloser struct {
	io.Reader
	closer io.Closer
}

func (r readCloser) Close() error { return r.closer.Close() }

// gzipErrors marks decompression failures as ErrCorrupt so callers can say why an
// object failed (a truncated upload, a bad checksum) rather than a bare "unexpected EOF".
func isCorruption(err error) bool {
	var flateErr flate.CorruptInputError
	return errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &flateErr)
}

type gzipErrors struct{ r io.Reader }

func (g gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF && isCorruption(err) {
		err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return n, err
}
