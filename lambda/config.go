package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/exporter"
	"github.com/vpcflow-ipfix/vpcflow-ipfix/pkg/forwarder"
)

// Config is the function's configuration. In Lambda it comes from the environment
// (names mirror the JSA log source options); locally from flags with the same meaning.
type Config struct {
	CollectorHost         string         // COLLECTOR_HOST: the flow processor (JSA "VPC Flow Destination Hostname")
	CollectorPort         int            // COLLECTOR_PORT: default 2055 (JSA default_Netflow)
	EPSLimit              float64        // EPS_LIMIT: flow records per second, all instances together; 0 = unlimited
	MaxConcurrency        int            // MAX_CONCURRENCY: the event source's MaximumConcurrency
	FilePattern           *regexp.Regexp // FILE_PATTERN: regex on the decoded key
	S3EndpointURL         string         // S3_ENDPOINT_URL: an S3-compatible endpoint; path-style addressing
	AssumeRoleARN         string         // ASSUME_ROLE_ARN: read the bucket through this role (cross-account)
	ExternalID            string         // EXTERNAL_ID: for the assumed role
	ObservationDomainID   uint32         // OBSERVATION_DOMAIN_ID
	DomainPerInstance     bool           // DOMAIN_PER_INSTANCE: low 16 bits of the domain id identify the instance
	TemplateRefresh       time.Duration  // TEMPLATE_REFRESH_SECONDS
	MaxDatagramBytes      int            // MAX_DATAGRAM_BYTES
	EnterpriseNumber      uint32         // ENTERPRISE_NUMBER: your IANA PEN; 0 = no AWS-specific elements
	PreferPacketAddresses bool           // PREFER_PACKET_ADDRESSES
	DeadlineMargin        time.Duration  // DEADLINE_MARGIN_SECONDS: stop this long before the function's deadline
	LogLevel              slog.Level     // LOG_LEVEL: debug, info, warn, error
	QueueURL              string         // QUEUE_URL: the function's own queue, for continuation messages
	SQSEndpointURL        string         // SQS_ENDPOINT_URL: an SQS interface endpoint or test server
}

// defaultConfig holds every default in one place.
func defaultConfig() Config {
	return Config{
		CollectorPort:         2055,
		EPSLimit:              5000,
		MaxConcurrency:        2,
		FilePattern:           regexp.MustCompile(forwarder.DefaultFilePattern),
		ObservationDomainID:   1,
		DomainPerInstance:     true,
		TemplateRefresh:       exporter.DefaultTemplateRefresh,
		MaxDatagramBytes:      exporter.DefaultMaxMessageSize,
		PreferPacketAddresses: true,
		DeadlineMargin:        10 * time.Second,
		LogLevel:              slog.LevelInfo,
	}
}

// configError names the variable that is wrong.
type configError struct {
	name, value, why string
}

func (e *configError) Error() string {
	return fmt.Sprintf("configuration: %s=%q: %s", e.name, e.value, e.why)
}

// loadConfig reads the environment through getenv. Every problem names its variable,
// so a bad deployment fails at cold start with a message that says what to fix.
func loadConfig(getenv func(string) string) (Config, error) {
	c := defaultConfig()
	var errs []string
	fail := func(name, value, why string) {
		errs = append(errs, (&configError{name, value, why}).Error())
	}
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	integer := func(name string, min, max int64, dst func(int64)) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min || n > max {
			fail(name, v, fmt.Sprintf("want a whole number from %d to %d", min, max))
			return
		}
		dst(n)
	}
	boolean := func(name string, dst *bool) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(name, v, "want true or false")
			return
		}
		*dst = b
	}

	str("COLLECTOR_HOST", &c.CollectorHost)
	if c.CollectorHost == "" {
		fail("COLLECTOR_HOST", "", "required: the hostname or IP address of the flow processor")
	} else if err := validHost(c.CollectorHost); err != nil {
		fail("COLLECTOR_HOST", c.CollectorHost, err.Error())
	}
	integer("COLLECTOR_PORT", 1, 65535, func(n int64) { c.CollectorPort = int(n) })
	integer("EPS_LIMIT", 0, 10_000_000, func(n int64) { c.EPSLimit = float64(n) })
	integer("MAX_CONCURRENCY", 1, 1000, func(n int64) { c.MaxConcurrency = int(n) })
	if v := getenv("FILE_PATTERN"); v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			fail("FILE_PATTERN", v, "not a valid regular expression: "+err.Error())
		} else {
			c.FilePattern = re
		}
	}
	str("S3_ENDPOINT_URL", &c.S3EndpointURL)
	if c.S3EndpointURL != "" {
		u, err := url.Parse(c.S3EndpointURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail("S3_ENDPOINT_URL", c.S3EndpointURL, "want an http:// or https:// URL")
		}
	}
	str("QUEUE_URL", &c.QueueURL)
	str("SQS_ENDPOINT_URL", &c.SQSEndpointURL)
	for name, v := range map[string]string{"QUEUE_URL": c.QueueURL, "SQS_ENDPOINT_URL": c.SQSEndpointURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail(name, v, "want an http:// or https:// URL")
		}
	}
	str("ASSUME_ROLE_ARN", &c.AssumeRoleARN)
	if c.AssumeRoleARN != "" && !roleARN.MatchString(c.AssumeRoleARN) {
		fail("ASSUME_ROLE_ARN", c.AssumeRoleARN, "want an IAM role ARN, arn:aws:iam::123456789012:role/name")
	}
	str("EXTERNAL_ID", &c.ExternalID)
	if c.ExternalID != "" && c.AssumeRoleARN == "" {
		fail("EXTERNAL_ID", c.ExternalID, "set only together with ASSUME_ROLE_ARN")
	}
	boolean("DOMAIN_PER_INSTANCE", &c.DomainPerInstance)
	maxDomain := int64(1<<32 - 1)
	if c.DomainPerInstance {
		maxDomain = 1<<16 - 1
	}
	integer("OBSERVATION_DOMAIN_ID", 0, maxDomain, func(n int64) { c.ObservationDomainID = uint32(n) })
	integer("TEMPLATE_REFRESH_SECONDS", 1, 86400, func(n int64) { c.TemplateRefresh = time.Duration(n) * time.Second })
	integer("MAX_DATAGRAM_BYTES", exporter.MinMessageSize, 65507, func(n int64) { c.MaxDatagramBytes = int(n) })
	integer("ENTERPRISE_NUMBER", 0, 1<<32-1, func(n int64) { c.EnterpriseNumber = uint32(n) })
	if c.EnterpriseNumber != 0 && c.MaxDatagramBytes < minDatagramWithEnterprise {
		fail("MAX_DATAGRAM_BYTES", strconv.Itoa(c.MaxDatagramBytes), fmt.Sprintf("with ENTERPRISE_NUMBER set, at least %d (the element descriptions must fit one message)", minDatagramWithEnterprise))
	}
	boolean("PREFER_PACKET_ADDRESSES", &c.PreferPacketAddresses)
	integer("DEADLINE_MARGIN_SECONDS", 1, 600, func(n int64) { c.DeadlineMargin = time.Duration(n) * time.Second })
	if v := strings.TrimSpace(getenv("LOG_LEVEL")); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			fail("LOG_LEVEL", v, "want debug, info, warn or error")
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return c, nil
}

// minDatagramWithEnterprise fits the RFC 5610 descriptions of the enterprise elements.
const minDatagramWithEnterprise = 1024

var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)

var hostname = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.?$`)

func validHost(h string) error {
	if ip := net.ParseIP(h); ip != nil {
		return nil
	}
	if len(h) > 253 || !hostname.MatchString(h) {
		return fmt.Errorf("not an IP address or a hostname")
	}
	return nil
}

// domainID is the observation domain this instance exports in. With DomainPerInstance,
// concurrent instances (which share one source IP through the Lambda Hyperplane ENI)
// each get their own domain, so a collector that keys sequence numbers on source IP
// and domain sees each instance's numbers run without gaps or interleaving.
func (c Config) domainID() uint32 {
	if !c.DomainPerInstance {
		return c.ObservationDomainID
	}
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	low := binary.BigEndian.Uint16(b[:])
	if low == 0 {
		low = 1
	}
	return c.ObservationDomainID<<16 | uint32(low)
}
