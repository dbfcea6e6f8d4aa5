package mailstore

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mailstore/mailstore/pkg/grpcauth"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/services/blobsvc"
	"github.com/mailstore/mailstore/services/imapgw"
	"github.com/mailstore/mailstore/services/lmtpgw"
	"github.com/mailstore/mailstore/services/metasvc"
	"github.com/mailstore/mailstore/services/pop3gw"
)

// Config is the root configuration: it only aggregates the components'.
type Config struct {
	Target      string
	DataDir     string
	DemoAccount string
	Server      ServerConfig
	Client      ClientConfig
	Log         LogConfig
	Tracing     TracingConfig
	GRPC        grpcauth.Config

	Metadata metasvc.Config
	Blob     blobsvc.Config
	IMAP     imapgw.Config
	POP3     pop3gw.Config
	LMTP     lmtpgw.Config
	Ingest   ingest.Config
}

// ServerConfig is the HTTP server of every process: /healthz, /readyz,
// /metrics and /debug/pprof.
type ServerConfig struct {
	HTTPListenAddress string
	// DrainWindow is how long a stopping gateway spreads its sessions'
	// shutdown over (IMAP BYEs) and lets POP3 sessions finish.
	DrainWindow time.Duration
	// ProxyTrustedCIDRs, when set, puts the mail client listeners behind a
	// load balancer that speaks the PROXY protocol (see listenClients).
	ProxyTrustedCIDRs  string
	ProxyHeaderTimeout time.Duration
	proxyTrusted       []netip.Prefix
}

// ClientConfig says where the components find each other over gRPC.
type ClientConfig struct {
	MetadataAddress string
	BlobAddress     string
}

// LogConfig sets up log/slog.
type LogConfig struct {
	Level  string
	Format string
}

// RegisterFlags registers every flag; defaults live here and nowhere else.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Tracing.RegisterFlags(f)
	c.GRPC.RegisterFlags(f, "grpc.")
	f.StringVar(&c.Target, "target", TargetAll, "Comma-separated components to run: "+strings.Join(Targets(), ", ")+".")
	f.StringVar(&c.DataDir, "data-dir", "./data", "Directory of the embedded backends' data (local metadata file, fs blobs).")
	f.StringVar(&c.DemoAccount, "demo-account", "", "Create this account at start-up if it does not exist, with a random password saved under the data dir (used by make run).")
	f.StringVar(&c.Server.HTTPListenAddress, "server.http-listen-address", "127.0.0.1:9200", "HTTP listen address for /healthz, /readyz, /metrics and /debug/pprof.")
	f.StringVar(&c.Server.ProxyTrustedCIDRs, "server.proxy-protocol.trusted-cidrs", "", "Comma-separated CIDRs of load balancers that send a PROXY protocol v1/v2 header; when set, IMAP, POP3 and LMTP listeners require the header from these and refuse every other connection.")
	f.DurationVar(&c.Server.ProxyHeaderTimeout, "server.proxy-protocol.header-timeout", 5*time.Second, "How long a connection may take to send its PROXY protocol header.")
	f.DurationVar(&c.Server.DrainWindow, "server.drain-window", 10*time.Second, "On SIGTERM, gateways spread their sessions' BYE over this window, so clients do not all reconnect at once, and let POP3 sessions QUIT within it; keep it well under the pod's termination grace period.")
	f.StringVar(&c.Client.MetadataAddress, "metadata.address", "127.0.0.1:9201", "gRPC address the other components use to reach the metadata service (a host:port, or dns:///name:port to balance over replicas).")
	f.StringVar(&c.Client.BlobAddress, "blob.address", "127.0.0.1:9202", "gRPC address the other components use to reach the blob service.")
	f.StringVar(&c.Log.Level, "log.level", "info", "Log level: debug, info, warn or error.")
	f.StringVar(&c.Log.Format, "log.format", "json", "Log format: json or text.")
	c.Metadata.RegisterFlags(f)
	c.Blob.RegisterFlags(f)
	c.IMAP.RegisterFlags(f)
	c.POP3.RegisterFlags(f)
	c.LMTP.RegisterFlags(f)
	c.Ingest.RegisterFlags(f)
}

// Validate checks the configuration, naming the setting at fault.
func (c *Config) Validate() error {
	targets, err := ParseTargets(c.Target)
	if err != nil {
		return err
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("-log.level: unknown level %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return fmt.Errorf("-log.format: unknown format %q", c.Log.Format)
	}
	if err := c.Tracing.Validate(); err != nil {
		return err
	}
	if err := c.GRPC.Load("grpc."); err != nil {
		return err
	}
	c.Server.proxyTrusted = nil
	for _, cidr := range strings.Split(c.Server.ProxyTrustedCIDRs, ",") {
		if cidr = strings.TrimSpace(cidr); cidr == "" {
			continue
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return fmt.Errorf("-server.proxy-protocol.trusted-cidrs: %w", err)
		}
		c.Server.proxyTrusted = append(c.Server.proxyTrusted, p.Masked())
	}
	if c.Server.ProxyHeaderTimeout <= 0 {
		return errors.New("-server.proxy-protocol.header-timeout: must be positive")
	}
	if c.Server.DrainWindow < 0 {
		return errors.New("-server.drain-window: must not be negative")
	}
	c.IMAP.DrainWindow = c.Server.DrainWindow
	c.POP3.DrainWindow = c.Server.DrainWindow
	c.LMTP.DrainWindow = c.Server.DrainWindow
	if c.Server.HTTPListenAddress == "" {
		return errors.New("-server.http-listen-address: must not be empty")
	}
	if c.DataDir == "" {
		return errors.New("-data-dir: must not be empty")
	}
	run := expand(targets)
	if run[Metadata] {
		// The reaper applies the POP3 gateway's server-wide policy.
		if err := c.POP3.ParseDefault(); err != nil {
			return err
		}
		c.Metadata.POP3Default = c.POP3.Default
		if err := c.Metadata.Validate(); err != nil {
			return err
		}
	}
	if run[Blob] {
		if err := c.Blob.Validate(); err != nil {
			return err
		}
	}
	if run[IMAP] {
		if err := c.IMAP.Validate(); err != nil {
			return err
		}
		if err := c.Ingest.Validate(); err != nil {
			return err
		}
	}
	if run[POP3] {
		if err := c.POP3.Validate(); err != nil {
			return err
		}
	}
	if run[LMTP] {
		if err := c.LMTP.Validate(); err != nil {
			return err
		}
		if err := c.Ingest.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Parse parses the command line: a -config YAML file first, whose keys are
// flag names (nested maps join with dots, lists become comma lists), then
// the flags given on the command line, which win.
func Parse(f *flag.FlagSet, args []string) error {
	var configFile string
	// Find -config among the arguments without failing on the others.
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if name, val, ok := strings.Cut(a, "="); ok && name == "config" && strings.HasPrefix(args[i], "-") {
			configFile = val
		} else if a == "config" && strings.HasPrefix(args[i], "-") && i+1 < len(args) {
			configFile = args[i+1]
		}
	}
	f.String("config", "", "YAML configuration file; its keys are flag names without the dash (nested keys join with dots). Flags given on the command line win.")
	if configFile != "" {
		if err := applyYAML(f, configFile); err != nil {
			return err
		}
	}
	return f.Parse(args)
}

func applyYAML(f *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("-config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("-config %s: %w", path, err)
	}
	flat := map[string]string{}
	if err := flatten("", doc, flat); err != nil {
		return fmt.Errorf("-config %s: %w", path, err)
	}
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" {
			return fmt.Errorf("-config %s: a config file cannot name another", path)
		}
		if f.Lookup(k) == nil {
			return fmt.Errorf("-config %s: unknown setting %q", path, k)
		}
		if err := f.Set(k, flat[k]); err != nil {
			return fmt.Errorf("-config %s: setting %q: %w", path, k, err)
		}
	}
	return nil
}

func flatten(prefix string, v any, out map[string]string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			if err := flatten(key, sub, out); err != nil {
				return err
			}
		}
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = fmt.Sprint(e)
		}
		out[prefix] = strings.Join(parts, ",")
	case nil:
		return fmt.Errorf("setting %q has no value", prefix)
	default:
		out[prefix] = fmt.Sprint(v)
	}
	return nil
}
