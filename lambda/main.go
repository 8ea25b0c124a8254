// Command bootstrap is the vpcflow-ipfix Lambda function and its local command line.
//
// Run by the Lambda runtime (AWS_LAMBDA_RUNTIME_API is set) it handles SQS events of
// S3 notifications; run anywhere else it is a command-line tool:
//
//	bootstrap replay --collector HOST:PORT [--eps N] PATH...   send flow log objects to a collector
//	bootstrap collect --listen HOST:PORT                       print the flows a collector would see
//	bootstrap invoke EVENT.json                                run the handler on an SQS event file
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func main() {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		runLambda()
		return
	}
	os.Exit(runCLI(os.Args[1:], os.Stdout, os.Stderr))
}

// runLambda builds the pipeline once (cold start) and serves invocations. Invalid
// configuration stops the cold start with a message naming the variable.
func runLambda() {
	cfg, err := loadConfig(os.Getenv)
	// JSON logs with Lambda's key names (timestamp, message), which CloudWatch Logs
	// Insights and the function's JSON log format expect.
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: lambdacontext.ReplaceAttr}))
	if err != nil {
		log.Error("invalid configuration", "error", err.Error())
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	a, err := newApp(context.Background(), cfg, log, os.Stdout, lambdacontext.FunctionName, nil)
	if err != nil {
		log.Error("cold start failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(a.handle)
}
