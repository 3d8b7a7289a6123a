package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/gateway/core"
)

// edgeOptions are the client-facing limits of the proxy listener (see
// core.Limits and docs/security.md).
type edgeOptions struct {
	ClientHeaderTimeout time.Duration
	ClientBodyTimeout   time.Duration
	ClientSendTimeout   time.Duration
	ClientIdleTimeout   time.Duration
	MaxClientConns      int
	MaxClientConnsPerIP int
	MaxHeaderBytes      byteSize
	MaxHeaderCount      int
	MaxURIBytes         byteSize
	MaxBodyBytes        byteSize
}

// addEdgeFlags declares the limit flags on fs, with core's defaults.
func addEdgeFlags(fs *flag.FlagSet, o *edgeOptions) {
	d := core.DefaultLimits()
	fs.DurationVar(&o.ClientHeaderTimeout, "client-header-timeout", d.HeaderTimeout,
		"time a client has to send a request header, from its first byte (or from accepting the connection); then 408 and close (restart to change)")
	fs.DurationVar(&o.ClientBodyTimeout, "client-body-timeout", d.BodyTimeout,
		"longest wait between two reads of a request body; then 408 and close")
	fs.DurationVar(&o.ClientSendTimeout, "client-send-timeout", d.SendTimeout,
		"longest wait between two writes of a response to a client that does not read; then the connection is closed")
	fs.DurationVar(&o.ClientIdleTimeout, "client-idle-timeout", d.IdleTimeout,
		"how long a keep-alive client connection may wait for its next request (restart to change)")
	fs.IntVar(&o.MaxClientConns, "max-client-conns", d.MaxConns,
		"most client connections served at once per proxy listener; more are answered 503 and closed (restart to change)")
	fs.IntVar(&o.MaxClientConnsPerIP, "max-client-conns-per-ip", d.MaxConnsPerIP,
		"most connections from one client address, 0 for no cap; more are answered 429 and closed (restart to change)")
	o.MaxHeaderBytes = byteSize(d.MaxHeaderBytes)
	fs.Var(&o.MaxHeaderBytes, "max-header-bytes",
		"largest request line plus header (e.g. 16KiB); larger is answered 431 (restart to change)")
	fs.IntVar(&o.MaxHeaderCount, "max-header-count", d.MaxHeaderCount,
		"most request header fields, 0 for no limit; more are answered 431")
	o.MaxURIBytes = byteSize(d.MaxURIBytes)
	fs.Var(&o.MaxURIBytes, "max-uri-bytes", "longest request-target (e.g. 8KiB), 0 for no limit; longer is answered 414")
	o.MaxBodyBytes = byteSize(d.MaxBodyBytes)
	fs.Var(&o.MaxBodyBytes, "max-body-bytes",
		"largest request body (e.g. 10MiB), 0 for no limit as APISIX; larger is answered 413")
}

// limits converts the options to core's limits.
func (o *edgeOptions) limits() core.Limits {
	return core.Limits{
		HeaderTimeout:  o.ClientHeaderTimeout,
		BodyTimeout:    o.ClientBodyTimeout,
		SendTimeout:    o.ClientSendTimeout,
		IdleTimeout:    o.ClientIdleTimeout,
		MaxConns:       o.MaxClientConns,
		MaxConnsPerIP:  o.MaxClientConnsPerIP,
		MaxHeaderBytes: int(o.MaxHeaderBytes),
		MaxHeaderCount: o.MaxHeaderCount,
		MaxURIBytes:    int(o.MaxURIBytes),
		MaxBodyBytes:   int64(o.MaxBodyBytes),
	}
}

// check refuses limits that cannot work.
func (o *edgeOptions) check() error {
	switch {
	case o.ClientHeaderTimeout < 0, o.ClientBodyTimeout < 0, o.ClientSendTimeout < 0, o.ClientIdleTimeout < 0:
		return fmt.Errorf("client timeouts cannot be negative")
	case o.MaxClientConns < 0, o.MaxClientConnsPerIP < 0, o.MaxHeaderCount < 0:
		return fmt.Errorf("connection and header counts cannot be negative")
	case o.MaxHeaderBytes < 1<<10:
		return fmt.Errorf("-max-header-bytes %s is below the 1KiB minimum", o.MaxHeaderBytes.String())
	}
	return nil
}

// byteSize is a flag of a size in bytes: a plain number, or one with a
// unit (B, KB, KiB, MB, MiB, GB, GiB; k/m/g are 1024-based, as nginx).
type byteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
}

func (b *byteSize) Set(s string) error {
	v := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("invalid size %q (e.g. 16384, 16KiB, 10MiB)", s)
	}
	*b = byteSize(n * mult)
	return nil
}

func (b *byteSize) String() string {
	v := int64(*b)
	switch {
	case v == 0:
		return "0"
	case v%(1<<30) == 0:
		return strconv.FormatInt(v>>30, 10) + "GiB"
	case v%(1<<20) == 0:
		return strconv.FormatInt(v>>20, 10) + "MiB"
	case v%(1<<10) == 0:
		return strconv.FormatInt(v>>10, 10) + "KiB"
	}
	return strconv.FormatInt(v, 10)
}
