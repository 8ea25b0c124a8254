// Command infra is the CDK app of vpcflow-ipfix: `cdk synth` and `cdk deploy`
// run it (cdk.json: "app": "go run ./infra").
//
// It reads its settings from CDK context (cdk.json or -c key=value, see
// config.go), builds the forwarder stack and, on request, the reader role
// stack for a central bucket account, checks both with cdk-nag's
// AwsSolutions pack and exits non-zero when a check reports an unsuppressed
// error or warning, so a finding fails `cdk synth` whatever the CLI version.
//
// The stacks are environment-agnostic: they perform no lookups, so synth
// needs no AWS account or credentials. `cdk deploy` fills in the account and
// region of the credentials it runs with.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Stack ids.
const (
	ForwarderStackID  = "VpcFlowIpfix"
	ReaderRoleStackID = "VpcFlowIpfixReaderRole"
)

// FeatureFlags are the CDK feature flags this app depends on. They are set in
// code (not only in cdk.json) so the tests synthesize exactly what `cdk synth`
// does.
func FeatureFlags() map[string]any {
	return map[string]any{
		// Server access logging through a bucket policy, not ACLs (the
		// buckets enforce bucket-owner object ownership).
		"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": true,
		"@aws-cdk/aws-s3:createDefaultLoggingPolicy":      true,
		"@aws-cdk/aws-iam:minimizePolicies":               true,
		"@aws-cdk/core:checkSecretUsage":                  true,
	}
}

func main() {
	err := run()
	jsii.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vpcflow-ipfix infra:", err)
		os.Exit(1)
	}
}

func run() error {
	app := awscdk.NewApp(&awscdk.AppProps{Context: ptr(FeatureFlags())})
	cfg, err := LoadConfig(func(key string) any { return app.Node().TryGetContext(jsii.String(key)) })
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	if err := checkAsset(cfg.AssetPath); err != nil {
		return err
	}
	Build(app, cfg, cfg.AssetPath)
	return nagFindings(app.Synth(nil))
}

// Build adds the stacks and the cdk-nag checks to app.
func Build(app awscdk.App, cfg Config, assetPath string) (*ForwarderStack, awscdk.Stack) {
	fwd := NewForwarderStack(app, ForwarderStackID, &ForwarderStackProps{Config: cfg, AssetPath: assetPath})
	var reader awscdk.Stack
	if cfg.ReaderRoleStack {
		reader = NewReaderRoleStack(app, ReaderRoleStackID, &ReaderRoleStackProps{Config: cfg})
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return fwd, reader
}

// checkAsset fails early, with the fix, when the function binary is missing.
func checkAsset(dir string) error {
	p := filepath.Join(dir, "bootstrap")
	st, err := os.Stat(p)
	switch {
	case err != nil:
		return fmt.Errorf("function binary %s not found: run `make build` first (or set -c %s=<dir with bootstrap>)", p, keyAssetPath)
	case st.IsDir() || st.Mode()&0o111 == 0:
		return fmt.Errorf("function binary %s is not an executable file", p)
	}
	return nil
}

// nagFindings returns an error listing every error annotation and every
// AwsSolutions warning of the synthesized stacks.
func nagFindings(asm cxapi.CloudAssembly) error {
	var msgs []string
	for _, st := range *asm.Stacks() {
		for _, m := range *st.Messages() {
			level := string(m.Level)
			text := fmt.Sprint(m.Entry.Data)
			if level == "error" || level == "warning" && strings.Contains(text, "AwsSolutions-") {
				msgs = append(msgs, fmt.Sprintf("[%s] %s: %s", level, *m.Id, text))
			}
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New("synth found problems (fix them or add a suppression with a specific reason):\n  " + strings.Join(msgs, "\n  "))
}

func ptr[T any](v T) *T { return &v }
