package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/edgeway/gateway/store"
	"github.com/goccy/go-yaml"
)

// options are the process settings. Each is a flag, and each flag may also
// be set in the YAML file given with -c (a flag given on the command line
// wins over the file).
type options struct {
	Listen       string
	ListenTLS    string
	AdminListen  string
	DataDir      string
	AdminKey     string
	ConfigFile   string
	DrainTimeout time.Duration
	Etcd         string
	EtcdPrefix   string
	Standalone   string
	DNSServers   string

	// ControlListen is the control API's address; "" disables it.
	ControlListen string

	edgeOptions
}

// newFlagSet declares every flag on fs, bound to o.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.StringVar(&o.Listen, "listen", "0.0.0.0:9080", "address of the proxy listener (HTTP)")
	fs.StringVar(&o.ListenTLS, "listen-tls", "0.0.0.0:9443",
		"address of the HTTPS proxy listener, serving the certificates of the SSL objects by SNI; empty disables it")
	fs.StringVar(&o.AdminListen, "admin-listen", "127.0.0.1:9180",
		"address of the Admin API and /metrics; a non-loopback address requires -admin-key")
	fs.StringVar(&o.ControlListen, "control-listen", "127.0.0.1:9090",
		"address of the control API (/v1/healthcheck: the health of upstream nodes); empty disables it")
	fs.StringVar(&o.DataDir, "data-dir", "./data", "directory of the embedded configuration store")
	fs.StringVar(&o.AdminKey, "admin-key", "",
		"key every admin request must carry in X-API-KEY; without it only loopback clients may use the Admin API")
	fs.StringVar(&o.ConfigFile, "c", "", "YAML `file` setting any of these flags by name, e.g. \"admin-listen: 127.0.0.1:9180\" (the command line wins)")
	fs.StringVar(&o.Standalone, "standalone", "",
		"serve the configuration in this file (APISIX standalone YAML/JSON, APISIX Ingress CRDs or Kong declarative), "+
			"re-applied when it changes; the Admin API is then read-only and -data-dir is not used")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 30*time.Second,
		"on SIGTERM, how long in-flight requests may take to finish before the gateway exits")
	fs.StringVar(&o.Etcd, "etcd", "",
		"comma-separated etcd client `URLs` (e.g. http://h1:2379,http://h2:2379): keep the configuration in etcd, "+
			"shared by a fleet of gateways and APISIX's tools, instead of the embedded store in -data-dir")
	fs.StringVar(&o.EtcdPrefix, "etcd-prefix", store.DefaultEtcdPrefix,
		"etcd key prefix standing for /apisix in APISIX's key layout (APISIX's etcd.prefix); used with -etcd")
	fs.StringVar(&o.DNSServers, "dns-servers", "",
		"comma-separated DNS `servers` (ip:port, or ip for port 53), asked in order, for upstreams with "+
			"discovery_type dns and for nodes given by host name; default: the nameservers of /etc/resolv.conf "+
			"(names in /etc/hosts are answered from it either way)")
	addEdgeFlags(fs, &o.edgeOptions)
	return fs
}

// parseOptions parses the command line, then applies the config file to
// every flag the command line did not set.
func parseOptions(args []string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.ConfigFile == "" {
		return o, o.check()
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	raw, err := os.ReadFile(o.ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read config file: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		return nil, fmt.Errorf("cannot parse config file %s: %w", o.ConfigFile, err)
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		name := strings.ReplaceAll(k, "_", "-")
		f := fs.Lookup(name)
		if f == nil || name == "c" {
			return nil, fmt.Errorf("config file %s: unknown setting %q (settings are the flag names, see gateway -h)", o.ConfigFile, k)
		}
		if set[name] {
			continue
		}
		v := values[k]
		var s string
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			s = strings.Join(parts, ",")
		default:
			s = fmt.Sprint(x)
		}
		if err := f.Value.Set(s); err != nil {
			return nil, fmt.Errorf("config file %s: %s: %w", o.ConfigFile, k, err)
		}
	}
	return o, o.check()
}
