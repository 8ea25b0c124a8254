package objectreader_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/objectreader"
)

func gz(t *testing.T, text string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(text))
	w.Close()
	return b.Bytes()
}

// fakeS3 answers GetObject from a map, or with an API error.
type fakeS3 struct {
	objects map[string][]byte
	err     error
}

func (f fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	b, ok := f.objects[*in.Key]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NoSuchKey", Message: "The specified key does not exist."}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b)), ETag: aws.String(`"abc"`), ContentLength: aws.Int64(int64(len(b)))}, nil
}

func TestOpen(t *testing.T) {
	text := "version srcaddr\n2 10.0.0.1\n"
	whole := gz(t, text)
	// Two gzip members, as a concatenated upload would have.
	multi := append(gz(t, "a\n"), gz(t, "b\n")...)
	client := fakeS3{objects: map[string][]byte{
		"x.log.gz":      whole,
		"plain.log.gz":  []byte(text), // named .gz, not compressed: read as text
		"gz-no-suffix":  whole,
		"multi.log.gz":  multi,
		"corrupt.gz":    whole[:len(whole)-6],
		"bad-header.gz": {0x1f, 0x8b, 0, 0},
		"empty":         {},
	}}
	for _, tc := range []struct {
		key, want string
		gzip      bool
		err       error
	}{
		{"x.log.gz", text, true, nil},
		{"plain.log.gz", text, false, nil},
		{"gz-no-suffix", text, true, nil},
		{"multi.log.gz", "a\nb\n", true, nil},
		{"empty", "", false, nil},
		{"corrupt.gz", "", true, objectreader.ErrCorrupt},
		{"bad-header.gz", "", true, objectreader.ErrCorrupt},
		{"missing", "", false, objectreader.ErrNotFound},
	} {
		t.Run(tc.key, func(t *testing.T) {
			rc, info, err := objectreader.S3{Client: client}.Open(context.Background(), "b", tc.key, "", "")
			var got []byte
			if err == nil {
				got, err = io.ReadAll(rc)
				rc.Close()
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || info.Gzip != tc.gzip || info.ETag != `"abc"` {
				t.Errorf("got %q gzip=%v info %+v", got, info.Gzip, info)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for code, want := range map[string]error{
		"AccessDenied":          objectreader.ErrAccessDenied,
		"InvalidAccessKeyId":    objectreader.ErrCredentials,
		"SignatureDoesNotMatch": objectreader.ErrCredentials,
		"NoSuchBucket":          objectreader.ErrNotFound,
	} {
		t.Run(code, func(t *testing.T) {
			_, _, err := objectreader.S3{Client: fakeS3{err: &smithy.GenericAPIError{Code: code}}}.Open(context.Background(), "b", "k", "", "")
			if !errors.Is(err, want) || !strings.Contains(err.Error(), "s3://b/k") || !strings.Contains(err.Error(), code) {
				t.Errorf("error %v", err)
			}
		})
	}
}
