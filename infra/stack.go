package main

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// ForwarderStackProps configures NewForwarderStack.
type ForwarderStackProps struct {
	awscdk.StackProps
	// Config is the validated configuration (see LoadConfig).
	Config Config
	// AssetPath is the directory holding the function's `bootstrap`
	// executable (`dist` after `make build`). Only `bootstrap` is packaged.
	AssetPath string
}

// ForwarderStack is the per-account stack: flow log bucket, flow logs,
// queue, function, network and alarms.
type ForwarderStack struct {
	awscdk.Stack
	Function        awslambda.Function
	Role            awsiam.Role
	Queue           awssqs.Queue
	DeadLetterQueue awssqs.Queue
	SecurityGroup   awsec2.SecurityGroup
	// Bucket is nil when the stack uses an existing bucket.
	Bucket awss3.Bucket
	// AlarmTopic is nil unless the configuration asks for one.
	AlarmTopic awssns.Topic
}

// NewForwarderStack builds the forwarder stack. It performs no lookups: every
// id it needs (VPC, subnets, route tables, prefix list) comes from the
// configuration, so synth runs offline and without credentials.
func NewForwarderStack(scope constructs.Construct, id string, props *ForwarderStackProps) *ForwarderStack {
	cfg := props.Config
	sp := props.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("VPC Flow Logs to IPFIX forwarder (vpcflow-ipfix)")
	}
	stack := awscdk.NewStack(scope, &id, &sp)
	s := &ForwarderStack{Stack: stack}

	account := *stack.Account()
	partition := *stack.Partition()
	region := *stack.Region()

	// Where the flow logs land. The bucket name is known before the bucket
	// exists, so the queue policy can name the bucket's ARN without a
	// reference to the bucket resource; that lets the bucket depend on the
	// queue policy (S3 checks the destination when it saves the
	// notification) without a cycle and without a notification custom
	// resource.
	loc := cfg.locations(partition, account, region)
	bucketName, bucketARN, objectsARN, objectPrefix := loc.BucketName, loc.BucketARN, loc.ObjectsARN, loc.ObjectPrefix
	bucketAccount := account
	if cfg.ExistingBucketAccount != "" {
		bucketAccount = cfg.ExistingBucketAccount
	}
	logDestination := bucketARN
	if cfg.FlowLogPrefix != "" {
		logDestination += "/" + cfg.FlowLogPrefix
	}

	// Queue and dead-letter queue. SSE-SQS: S3 event notifications cannot
	// publish to a queue encrypted with the AWS managed KMS key.
	s.DeadLetterQueue = awssqs.NewQueue(stack, jsii.String("DeadLetterQueue"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	s.Queue = awssqs.NewQueue(stack, jsii.String("Queue"), &awssqs.QueueProps{
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(float64(cfg.VisibilityTimeoutSeconds()))),
		RetentionPeriod:   awscdk.Duration_Days(jsii.Number(4)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			Queue:           s.DeadLetterQueue,
			MaxReceiveCount: jsii.Number(float64(cfg.MaxReceiveCount)),
		},
	})
	queuePolicy := s.Queue.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AllowFlowLogBucketNotifications"),
		Effect:     awsiam.Effect_ALLOW,
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("s3.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sqs:SendMessage"),
		Resources:  &[]*string{s.Queue.QueueArn()},
		Conditions: &map[string]any{
			"ArnEquals":    map[string]any{"aws:SourceArn": bucketARN},
			"StringEquals": map[string]any{"aws:SourceAccount": bucketAccount},
		},
	}))

	// Flow log bucket (or the existing one).
	var key awskms.Key
	keyARN := cfg.KeyARN()
	if cfg.CreatesBucket() {
		s.Bucket, key = newFlowLogBucket(stack, cfg, bucketName, objectsARN, account, partition, region)
		if key != nil {
			keyARN = *key.KeyArn()
		}
		cfnBucket := s.Bucket.Node().DefaultChild().(awss3.CfnBucket)
		cfnBucket.SetNotificationConfiguration(&awss3.CfnBucket_NotificationConfigurationProperty{
			QueueConfigurations: &[]any{&awss3.CfnBucket_QueueConfigurationProperty{
				Event: jsii.String("s3:ObjectCreated:*"),
				Queue: s.Queue.QueueArn(),
				Filter: &awss3.CfnBucket_NotificationFilterProperty{
					S3Key: &awss3.CfnBucket_S3KeyFilterProperty{Rules: &[]any{
						&awss3.CfnBucket_FilterRuleProperty{Name: jsii.String("prefix"), Value: jsii.String(objectPrefix)},
						&awss3.CfnBucket_FilterRuleProperty{Name: jsii.String("suffix"), Value: jsii.String(FlowLogSuffix)},
					}},
				},
			}},
		})
		s.Bucket.Node().AddDependency(queuePolicy.PolicyDependable)
	} else {
		// The bucket owner configures the notification; the exact
		// configuration is an output.
		awscdk.NewCfnOutput(stack, jsii.String("BucketNotificationConfiguration"), &awscdk.CfnOutputProps{
			Description: jsii.String("Notification configuration the bucket owner applies to the existing bucket (aws s3api put-bucket-notification-configuration; merge with any existing entries)"),
			Value: stack.ToJsonString(map[string]any{"QueueConfigurations": []any{map[string]any{
				"Id":       "vpcflow-ipfix",
				"QueueArn": s.Queue.QueueArn(),
				"Events":   []string{"s3:ObjectCreated:*"},
				"Filter": map[string]any{"Key": map[string]any{"FilterRules": []any{
					map[string]any{"Name": "prefix", "Value": objectPrefix},
					map[string]any{"Name": "suffix", "Value": FlowLogSuffix},
				}}},
			}}}, nil),
		})
	}

	// One flow log per VPC.
	for _, vpcID := range cfg.VPCIDs {
		fl := awsec2.NewCfnFlowLog(stack, jsii.String("FlowLog-"+vpcID), &awsec2.CfnFlowLogProps{
			ResourceId:             jsii.String(vpcID),
			ResourceType:           jsii.String("VPC"),
			TrafficType:            jsii.String(cfg.TrafficType),
			LogDestinationType:     jsii.String("s3"),
			LogDestination:         jsii.String(logDestination),
			MaxAggregationInterval: jsii.Number(float64(cfg.AggregationInterval)),
			LogFormat:              optString(cfg.LogFormat),
			// DestinationOptions is untyped JSON in the L1: spell the
			// CloudFormation keys.
			DestinationOptions: map[string]any{
				"FileFormat":               "plain-text",
				"HiveCompatiblePartitions": cfg.HiveCompatiblePartitions,
				"PerHourPartition":         cfg.PerHourPartition,
			},
			Tags: &[]*awscdk.CfnTag{{Key: jsii.String("Name"), Value: jsii.String("vpcflow-ipfix " + vpcID)}},
		})
		if s.Bucket != nil {
			// The delivery policy must exist before the flow log, or the
			// service tries to write its own.
			fl.Node().AddDependency(s.Bucket.Policy())
		}
	}

	// Network: imported subnets (with zones and route tables, so no lookup).
	zones := slices.Clone(cfg.AvailabilityZones)
	slices.Sort(zones)
	zones = slices.Compact(zones)
	vpc := awsec2.Vpc_FromVpcAttributes(stack, jsii.String("Vpc"), &awsec2.VpcAttributes{
		VpcId:             jsii.String(cfg.LambdaVPCID),
		AvailabilityZones: jsii.Strings(zones...),
	})
	subnets := make([]awsec2.ISubnet, len(cfg.SubnetIDs))
	for i, id := range cfg.SubnetIDs {
		subnets[i] = awsec2.Subnet_FromSubnetAttributes(stack, jsii.String("Subnet-"+id), &awsec2.SubnetAttributes{
			SubnetId:         jsii.String(id),
			AvailabilityZone: jsii.String(cfg.AvailabilityZones[i]),
			RouteTableId:     jsii.String(cfg.RouteTableIDs[i]),
		})
	}
	s.SecurityGroup = awsec2.NewSecurityGroup(stack, jsii.String("FunctionSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:                  vpc,
		Description:          jsii.String("vpcflow-ipfix forwarder: IPFIX to the flow processor, HTTPS to S3 only"),
		AllowAllOutbound:     jsii.Bool(false),
		AllowAllIpv6Outbound: jsii.Bool(false),
	})
	s.SecurityGroup.AddEgressRule(peer(cfg.CollectorCIDR.String()), awsec2.Port_Udp(jsii.Number(float64(cfg.CollectorPort))),
		jsii.String(fmt.Sprintf("IPFIX to the flow processor %s", cfg.CollectorHost)), jsii.Bool(false))
	s.SecurityGroup.AddEgressRule(awsec2.Peer_PrefixList(jsii.String(cfg.S3PrefixListID)), awsec2.Port_Tcp(jsii.Number(443)),
		jsii.String("HTTPS to Amazon S3 (S3 prefix list)"), jsii.Bool(false))
	for _, p := range cfg.HTTPSEgressCIDRs {
		s.SecurityGroup.AddEgressRule(peer(p.String()), awsec2.Port_Tcp(jsii.Number(443)),
			jsii.String("HTTPS to a VPC endpoint or proxy"), jsii.Bool(false))
	}
	if cfg.CreateS3GatewayEndpoint {
		ep := &awsec2.CfnVPCEndpointProps{
			VpcId:           jsii.String(cfg.LambdaVPCID),
			ServiceName:     jsii.String("com.amazonaws." + region + ".s3"),
			VpcEndpointType: jsii.String("Gateway"),
			RouteTableIds:   anys(uniq(cfg.RouteTableIDs)),
		}
		if cfg.S3EndpointPolicy == "restricted" {
			ep.PolicyDocument = awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
				awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
					Sid:        jsii.String("ReadFlowLogObjects"),
					Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
					Actions:    jsii.Strings("s3:GetObject"),
					Resources:  jsii.Strings(objectsARN),
				}),
			}})
		}
		awsec2.NewCfnVPCEndpoint(stack, jsii.String("S3GatewayEndpoint"), ep)
	}

	// Resuming large objects: the function queues continuation messages on its own queue,
	// so it needs a way to SQS from its private subnets.
	if cfg.CreateSQSEndpoint {
		epSG := awsec2.NewSecurityGroup(stack, jsii.String("SqsEndpointSecurityGroup"), &awsec2.SecurityGroupProps{
			Vpc:                  vpc,
			Description:          jsii.String("vpcflow-ipfix: the SQS interface endpoint, reachable from the forwarder only"),
			AllowAllOutbound:     jsii.Bool(false),
			AllowAllIpv6Outbound: jsii.Bool(false),
		})
		// Separate rule resources: two groups naming each other inline would be a cycle.
		awsec2.NewCfnSecurityGroupIngress(stack, jsii.String("SqsEndpointFromFunction"), &awsec2.CfnSecurityGroupIngressProps{
			GroupId: epSG.SecurityGroupId(), IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(443), ToPort: jsii.Number(443),
			SourceSecurityGroupId: s.SecurityGroup.SecurityGroupId(), Description: jsii.String("HTTPS from the forwarder function"),
		})
		awsec2.NewCfnSecurityGroupEgress(stack, jsii.String("FunctionToSqsEndpoint"), &awsec2.CfnSecurityGroupEgressProps{
			GroupId: s.SecurityGroup.SecurityGroupId(), IpProtocol: jsii.String("tcp"), FromPort: jsii.Number(443), ToPort: jsii.Number(443),
			DestinationSecurityGroupId: epSG.SecurityGroupId(), Description: jsii.String("HTTPS to the SQS interface endpoint (continuation messages)"),
		})
		endpoint := awsec2.NewInterfaceVpcEndpoint(stack, jsii.String("SqsInterfaceEndpoint"), &awsec2.InterfaceVpcEndpointProps{
			Vpc:               vpc,
			Service:           awsec2.InterfaceVpcEndpointAwsService_SQS(),
			Subnets:           &awsec2.SubnetSelection{Subnets: &subnets},
			SecurityGroups:    &[]awsec2.ISecurityGroup{epSG},
			PrivateDnsEnabled: jsii.Bool(true),
			Open:              jsii.Bool(false),
		})
		// The endpoint carries only the forwarder's own continuation messages.
		endpoint.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("QueueContinuationMessages"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
			Actions:    jsii.Strings("sqs:SendMessage"),
			Resources:  &[]*string{s.Queue.QueueArn()},
		}))
	}

	// Role: a scoped inline policy instead of the AWS managed policies.
	s.Role = awsiam.NewRole(stack, jsii.String("FunctionRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(cfg.FunctionRoleName),
		Description: jsii.String("vpcflow-ipfix forwarder function"),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
	})
	// Lambda creates and deletes the function's network interfaces with the
	// execution role. ec2:Describe* and ec2:CreateNetworkInterface work only
	// on "*"; the rest is limited to network interfaces of this account and
	// region.
	s.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("VpcNetworkInterfaces"),
		Actions:   jsii.Strings("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"),
		Resources: jsii.Strings("*"),
	}))
	s.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("VpcNetworkInterfaceCleanup"),
		Actions:   jsii.Strings("ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"),
		Resources: jsii.Strings("arn:" + partition + ":ec2:" + region + ":" + account + ":network-interface/*"),
	}))
	if cfg.AssumeRoleARN == "" {
		s.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ReadFlowLogObjects"),
			Actions:   jsii.Strings("s3:GetObject"),
			Resources: jsii.Strings(objectsARN),
		}))
		if keyARN != "" {
			s.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("DecryptFlowLogObjects"),
				Actions:    jsii.Strings("kms:Decrypt"),
				Resources:  jsii.Strings(keyARN),
				Conditions: &map[string]any{"StringEquals": map[string]any{"kms:ViaService": "s3." + region + ".amazonaws.com"}},
			}))
		}
	} else {
		s.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("AssumeFlowLogReaderRole"),
			Actions:   jsii.Strings("sts:AssumeRole"),
			Resources: jsii.Strings(cfg.AssumeRoleARN),
		}))
	}

	if cfg.Resume {
		s.Role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("QueueContinuationMessages"),
			Actions:   jsii.Strings("sqs:SendMessage"),
			Resources: &[]*string{s.Queue.QueueArn()},
		}))
	}

	// Function, its log group and the SQS event source.
	logGroup := awslogs.NewLogGroup(stack, jsii.String("FunctionLogGroup"), &awslogs.LogGroupProps{
		Retention:     retention(cfg.LogRetentionDays),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	logGroup.GrantWrite(s.Role)
	env := cfg.Environment()
	envp := make(map[string]*string, len(env))
	for k, v := range env {
		envp[k] = jsii.String(v)
	}
	if cfg.Resume {
		envp["QUEUE_URL"] = s.Queue.QueueUrl()
	}
	s.Function = awslambda.NewFunction(stack, jsii.String("Function"), &awslambda.FunctionProps{
		Description:  jsii.String("Forwards VPC Flow Logs from S3 to the flow processor as IPFIX over UDP"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code: awslambda.Code_FromAsset(jsii.String(props.AssetPath), &awss3assets.AssetOptions{
			Exclude: jsii.Strings("*", "!bootstrap"),
		}),
		MemorySize:     jsii.Number(float64(cfg.MemorySize)),
		Timeout:        awscdk.Duration_Seconds(jsii.Number(float64(cfg.TimeoutSeconds))),
		Environment:    &envp,
		LoggingFormat:  awslambda.LoggingFormat_JSON,
		LogGroup:       logGroup,
		Role:           s.Role,
		Vpc:            vpc,
		VpcSubnets:     &awsec2.SubnetSelection{Subnets: &subnets},
		SecurityGroups: &[]awsec2.ISecurityGroup{s.SecurityGroup},
	})
	src := &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(float64(cfg.BatchSize)),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(float64(cfg.MaxConcurrency)),
	}
	if cfg.BatchingWindowSeconds > 0 {
		src.MaxBatchingWindow = awscdk.Duration_Seconds(jsii.Number(float64(cfg.BatchingWindowSeconds)))
	}
	s.Function.AddEventSource(awslambdaeventsources.NewSqsEventSource(s.Queue, src))

	s.addAlarms(cfg, account, partition, region)
	s.addSuppressions(cfg)

	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Description: jsii.String(desc), Value: v})
	}
	out("FlowLogBucketName", "Bucket the flow logs are written to", jsii.String(bucketName))
	out("FlowLogObjectPrefix", "Key prefix of this account's flow log objects", jsii.String(objectPrefix))
	out("QueueArn", "Queue that receives the ObjectCreated notifications", s.Queue.QueueArn())
	out("DeadLetterQueueUrl", "Dead-letter queue (redrive after fixing the cause)", s.DeadLetterQueue.QueueUrl())
	out("FunctionName", "Forwarder function", s.Function.FunctionName())
	out("FunctionRoleArn", "Execution role (trust this ARN in the bucket account's reader role)", s.Role.RoleArn())
	out("SecurityGroupId", "Security group of the function's network interfaces", s.SecurityGroup.SecurityGroupId())
	return s
}

// newFlowLogBucket creates the flow log bucket, its access log bucket and,
// when configured, its KMS key, with the policy the log delivery service
// needs.
func newFlowLogBucket(stack awscdk.Stack, cfg Config, name, objectsARN, account, partition, region string) (awss3.Bucket, awskms.Key) {
	sourceArn := "arn:" + partition + ":logs:" + region + ":" + account + ":*"
	deliveryConditions := func(acl bool) *map[string]any {
		eq := map[string]any{"aws:SourceAccount": account}
		if acl {
			eq["s3:x-amz-acl"] = "bucket-owner-full-control"
		}
		return &map[string]any{"StringEquals": eq, "ArnLike": map[string]any{"aws:SourceArn": sourceArn}}
	}
	lifecycle := &[]*awss3.LifecycleRule{{
		Id:                                  jsii.String("expire"),
		Enabled:                             jsii.Bool(true),
		Expiration:                          awscdk.Duration_Days(jsii.Number(float64(cfg.ExpiryDays))),
		AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
	}}

	accessLogs := awss3.NewBucket(stack, jsii.String("AccessLogBucket"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED, // the only encryption S3 server access logging supports
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		MinimumTLSVersion: jsii.Number(1.2),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules:    lifecycle,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})

	props := &awss3.BucketProps{
		BucketName:             jsii.String(name),
		Encryption:             awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:             jsii.Bool(true),
		MinimumTLSVersion:      jsii.Number(1.2),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules:         lifecycle,
		ServerAccessLogsBucket: accessLogs,
		ServerAccessLogsPrefix: jsii.String("flow-log-bucket/"),
		RemovalPolicy:          awscdk.RemovalPolicy_RETAIN,
	}
	var key awskms.Key
	if cfg.CreatesKey() {
		key = awskms.NewKey(stack, jsii.String("FlowLogKey"), &awskms.KeyProps{
			Description:       jsii.String("vpcflow-ipfix flow log bucket"),
			EnableKeyRotation: jsii.Bool(true),
			RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		})
		key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("AllowVpcFlowLogsDelivery"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("delivery.logs.amazonaws.com"), nil)},
			Actions:    jsii.Strings("kms:GenerateDataKey*"),
			Resources:  jsii.Strings("*"),
			Conditions: deliveryConditions(false),
		}), nil)
		props.Encryption = awss3.BucketEncryption_KMS
		props.EncryptionKey = key
		props.BucketKeyEnabled = jsii.Bool(true)
	}
	bucket := awss3.NewBucket(stack, jsii.String("FlowLogBucket"), props)
	bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AWSLogDeliveryWrite"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("delivery.logs.amazonaws.com"), nil)},
		Actions:    jsii.Strings("s3:PutObject"),
		Resources:  jsii.Strings(objectsARN),
		Conditions: deliveryConditions(true),
	}))
	bucket.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AWSLogDeliveryAclCheck"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("delivery.logs.amazonaws.com"), nil)},
		Actions:    jsii.Strings("s3:GetBucketAcl", "s3:ListBucket"),
		Resources:  &[]*string{bucket.BucketArn()},
		Conditions: deliveryConditions(false),
	}))
	return bucket, key
}

// addAlarms adds the four alarms and, when configured, an encrypted SNS topic
// they notify.
func (s *ForwarderStack) addAlarms(cfg Config, account, partition, region string) {
	five := awscdk.Duration_Minutes(jsii.Number(5))
	// Every alarm fires on the first period above its threshold; no data is not a problem.
	alarm := func(id, description string, metric awscloudwatch.IMetric, threshold float64) awscloudwatch.Alarm {
		return awscloudwatch.NewAlarm(s.Stack, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			EvaluationPeriods:  jsii.Number(1),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
	}
	alarms := []awscloudwatch.Alarm{
		alarm("DeadLetterQueueNotEmptyAlarm",
			"Flow log notifications failed "+strconv.Itoa(cfg.MaxReceiveCount)+" times and are in the dead-letter queue",
			s.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
				Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum"),
			}), 0),
		alarm("OldestMessageAgeAlarm",
			"Flow log notifications wait longer than "+strconv.Itoa(cfg.OldestMessageAgeAlarmSeconds)+" s: the forwarder falls behind",
			s.Queue.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Maximum")}),
			float64(cfg.OldestMessageAgeAlarmSeconds)),
		alarm("FunctionErrorsAlarm", "The forwarder function failed",
			s.Function.MetricErrors(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}), 0),
		alarm("FunctionThrottlesAlarm", "The forwarder function was throttled (account concurrency exhausted)",
			s.Function.MetricThrottles(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}), 0),
	}
	if !cfg.CreateAlarmTopic {
		return
	}
	// CloudWatch cannot publish to a topic encrypted with the AWS managed
	// SNS key, so the topic gets its own key that CloudWatch may use.
	key := awskms.NewKey(s.Stack, jsii.String("AlarmTopicKey"), &awskms.KeyProps{
		Description:       jsii.String("vpcflow-ipfix alarm topic"),
		EnableKeyRotation: jsii.Bool(true),
	})
	alarmSource := &map[string]any{
		"StringEquals": map[string]any{"aws:SourceAccount": account},
		"ArnLike":      map[string]any{"aws:SourceArn": "arn:" + partition + ":cloudwatch:" + region + ":" + account + ":alarm:*"},
	}
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AllowCloudWatchAlarms"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		Conditions: alarmSource,
	}), nil)
	s.AlarmTopic = awssns.NewTopic(s.Stack, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("vpcflow-ipfix alarms"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	s.AlarmTopic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AllowCloudWatchAlarms"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  &[]*string{s.AlarmTopic.TopicArn()},
		Conditions: alarmSource,
	}))
	if cfg.AlarmEmail != "" {
		s.AlarmTopic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(cfg.AlarmEmail), nil))
	}
	action := awscloudwatchactions.NewSnsAction(s.AlarmTopic)
	for _, a := range alarms {
		a.AddAlarmAction(action)
		a.AddOkAction(action)
	}
	awscdk.NewCfnOutput(s.Stack, jsii.String("AlarmTopicArn"), &awscdk.CfnOutputProps{
		Description: jsii.String("SNS topic the alarms notify"),
		Value:       s.AlarmTopic.TopicArn(),
	})
}

// addSuppressions records, next to the resource it concerns, why each
// remaining cdk-nag finding is acceptable.
func (s *ForwarderStack) addSuppressions(cfg Config) {
	// cdk-nag prints pseudo parameters as <AWS::Name>.
	loc := cfg.locations("<AWS::Partition>", "<AWS::AccountId>", "<AWS::Region>")
	sup := []*cdknag.NagPackSuppression{
		{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("ec2:CreateNetworkInterface, ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets, which Lambda " +
				"needs to attach the function to its subnets, work only with Resource \"*\" (the same statement as the " +
				"AWSLambdaVPCAccessExecutionRole managed policy, which this inline policy replaces)."),
			AppliesTo: &[]any{"Resource::*"},
		},
		{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("Lambda deletes and re-addresses the function's network interfaces, whose ids are assigned at run " +
				"time; the statement is limited to network interfaces of this account and region."),
			AppliesTo: &[]any{"Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*"},
		},
	}
	if cfg.AssumeRoleARN == "" {
		sup = append(sup, &cdknag.NagPackSuppression{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("s3:GetObject is limited to the key prefix under which the flow log service writes this " +
				"account's objects; their names (date path, ENI, timestamp) are not known in advance."),
			AppliesTo: &[]any{"Resource::" + loc.ObjectsARN},
		})
	}
	cdknag.NagSuppressions_AddResourceSuppressions(s.Role, &sup, jsii.Bool(true))
}

// locations are the bucket name and ARNs the stacks use, built from the
// given partition, account and region (CloudFormation tokens, or the
// placeholders cdk-nag prints for them).
type locations struct {
	BucketName   string
	BucketARN    string
	ObjectPrefix string // this account's flow log objects, ends with "/"
	ObjectsARN   string // ARN pattern of those objects
}

func (c Config) locations(partition, account, region string) locations {
	name := c.ExistingBucketName
	if c.CreatesBucket() {
		name = c.NewBucketName
		if name == "" {
			name = "vpcflow-ipfix-" + account + "-" + region
		}
	}
	arn := "arn:" + partition + ":s3:::" + name
	prefix := c.AccountPrefix(account)
	return locations{BucketName: name, BucketARN: arn, ObjectPrefix: prefix, ObjectsARN: arn + "/" + prefix + "*"}
}

func anys(xs []string) *[]any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return &out
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return jsii.String(s)
}

func peer(cidr string) awsec2.IPeer {
	if isIPv6CIDR(cidr) {
		return awsec2.Peer_Ipv6(jsii.String(cidr))
	}
	return awsec2.Peer_Ipv4(jsii.String(cidr))
}

func isIPv6CIDR(cidr string) bool {
	for _, r := range cidr {
		if r == ':' {
			return true
		}
	}
	return false
}

func uniq(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

var retentions = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 120: awslogs.RetentionDays_FOUR_MONTHS,
	150: awslogs.RetentionDays_FIVE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS, 731: awslogs.RetentionDays_TWO_YEARS,
	1096: awslogs.RetentionDays_THREE_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS, 3288: awslogs.RetentionDays_NINE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}

func retention(days int) awslogs.RetentionDays {
	if r, ok := retentions[days]; ok {
		return r
	}
	return awslogs.RetentionDays_THREE_MONTHS
}

var _ = cdknag.NagSuppressions_AddResourceSuppressions
