package sqsfake_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/internal/sqsfake"
)

// TestRealClient checks the fake against the real aws-sdk-go-v2 SQS client: the request
// shape, the response shape (the client verifies the body's MD5) and the error shape.
func TestRealClient(t *testing.T) {
	srv := sqsfake.New("flowlogs")
	defer srv.Close()
	client := sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "secret", ""),
	})
	ctx := context.Background()
	url := srv.QueueURL("flowlogs")
	out, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(`{"k":"v ü"}`)})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Take(url)
	if len(got) != 1 || got[0].Body != `{"k":"v ü"}` || got[0].ID != aws.ToString(out.MessageId) {
		t.Fatalf("server has %+v, client got %+v", got, out)
	}
	_, err = client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(srv.QueueURL("nope")), MessageBody: aws.String("x")})
	var missing *types.QueueDoesNotExist
	if !errors.As(err, &missing) {
		t.Fatalf("unknown queue: %v", err)
	}
	srv.Fail.Store(true)
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")}, func(o *sqs.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Fatal("injected failure not reported")
	}
}
