package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// ReaderRoleStackProps configures NewReaderRoleStack.
type ReaderRoleStackProps struct {
	awscdk.StackProps
	// Config is the validated configuration. The stack uses
	// ExistingBucketName, FlowLogPrefix, HiveCompatiblePartitions, KMSKey,
	// ExternalID, ReaderRoleName, ForwarderAccount and FunctionRoleName.
	Config Config
}

// NewReaderRoleStack builds the small stack that the owner of a central flow
// log bucket deploys in the bucket's account: one role that the forwarder's
// execution role (in ForwarderAccount) may assume, allowed to read only the
// forwarder account's flow log objects and, for an SSE-KMS bucket, to decrypt
// them through S3. The forwarder then runs with assumeRoleArn set to the
// ReaderRoleArn output.
func NewReaderRoleStack(scope constructs.Construct, id string, props *ReaderRoleStackProps) awscdk.Stack {
	cfg := props.Config
	sp := props.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("vpcflow-ipfix: role the forwarder assumes to read flow logs from this account's bucket")
	}
	stack := awscdk.NewStack(scope, &id, &sp)
	partition := *stack.Partition()
	region := *stack.Region()

	forwarderRole := "arn:" + partition + ":iam::" + cfg.ForwarderAccount + ":role/" + cfg.FunctionRoleName
	conditions := map[string]any{"ArnEquals": map[string]any{"aws:PrincipalArn": forwarderRole}}
	if cfg.ExternalID != "" {
		conditions["StringEquals"] = map[string]any{"sts:ExternalId": cfg.ExternalID}
	}
	// Trusting the account with an aws:PrincipalArn condition (instead of
	// the role ARN as principal) lets this stack deploy before the forwarder
	// role exists and survives the role being recreated.
	role := awsiam.NewRole(stack, jsii.String("ReaderRole"), &awsiam.RoleProps{
		RoleName:           jsii.String(cfg.ReaderRoleName),
		Description:        jsii.String("vpcflow-ipfix: read flow logs of account " + cfg.ForwarderAccount),
		AssumedBy:          awsiam.NewPrincipalWithConditions(awsiam.NewAccountPrincipal(jsii.String(cfg.ForwarderAccount)), &conditions),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	objects := "arn:" + partition + ":s3:::" + cfg.ExistingBucketName + "/" + cfg.AccountPrefix(cfg.ForwarderAccount) + "*"
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadFlowLogObjects"),
		Actions:   jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings(objects),
	}))
	if arn := cfg.KeyARN(); arn != "" {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("DecryptFlowLogObjects"),
			Actions:    jsii.Strings("kms:Decrypt"),
			Resources:  jsii.Strings(arn),
			Conditions: &map[string]any{"StringEquals": map[string]any{"kms:ViaService": "s3." + region + ".amazonaws.com"}},
		}))
	}
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("s3:GetObject is limited to the key prefix under which the flow log service writes account " +
			cfg.ForwarderAccount + "'s objects; their names (date path, ENI, timestamp) are not known in advance."),
		AppliesTo: &[]any{"Resource::arn:<AWS::Partition>:s3:::" + cfg.ExistingBucketName + "/" + cfg.AccountPrefix(cfg.ForwarderAccount) + "*"},
	}}, jsii.Bool(true))

	awscdk.NewCfnOutput(stack, jsii.String("ReaderRoleArn"), &awscdk.CfnOutputProps{
		Description: jsii.String("Set the forwarder's assumeRoleArn context key to this ARN"),
		Value:       role.RoleArn(),
	})
	return stack
}
