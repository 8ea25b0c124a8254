package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3 is versitygw with its posix backend in the work directory, on 127.0.0.1, checking
// SigV4 signatures against one root key. Objects are written with the AWS SDK, as the
// flow log service writes them.

// The root credentials of the local S3 server (not secrets: the server lives for one run
// on 127.0.0.1).
const (
	s3AccessKey = "AKIAE2EVPCFLOWIPFIX0"
	s3SecretKey = "e2e-secret-key-for-the-local-versitygw-only"
	s3Region    = "us-east-1"
)

// S3Server is the running versitygw.
type S3Server struct {
	URL    string
	proc   *Proc
	Client *s3.Client
}

// s3Server starts versitygw once per run; every scenario uses its own bucket.
func (h *Harness) s3Server(ctx context.Context) (*S3Server, error) {
	if h.s3 != nil {
		if h.s3.proc.Exited() {
			return nil, fmt.Errorf("versitygw exited: %v (log %s)", h.s3.proc.ExitErr(), h.s3.proc.LogPath)
		}
		return h.s3, nil
	}
	port, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(h.work, "s3")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProc("versitygw", filepath.Join(h.work, "versitygw.log"), nil, syscall.SIGTERM,
		h.tools.Versitygw, "--port", addr, "--access", s3AccessKey, "--secret", s3SecretKey,
		"--region", s3Region, "--quiet", "posix", root)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := waitTCP(wctx, addr, p); err != nil {
		p.Stop()
		return nil, err
	}
	s := &S3Server{URL: "http://" + addr, proc: p}
	s.Client = s3.New(s3.Options{
		Region:       s3Region,
		BaseEndpoint: aws.String(s.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s3AccessKey, s3SecretKey, ""),
		HTTPClient:   localHTTP,
	})
	h.s3 = s
	return s, nil
}

// Stop stops versitygw.
func (s *S3Server) Stop() {
	if s != nil {
		s.proc.Stop()
	}
}

// Bucket creates a bucket (or finds it there).
func (s *S3Server) Bucket(ctx context.Context, name string) error {
	_, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	var owned interface{ ErrorCode() string }
	if err != nil && errors.As(err, &owned) && (owned.ErrorCode() == "BucketAlreadyOwnedByYou" || owned.ErrorCode() == "BucketAlreadyExists") {
		return nil
	}
	return err
}

// Put writes an object as the flow log service does (a PutObject of the gzip bytes).
func (s *S3Server) Put(ctx context.Context, bucket, key string, body []byte) error {
	_, err := s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return fmt.Errorf("PutObject s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}
