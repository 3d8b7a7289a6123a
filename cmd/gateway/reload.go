package main

import (
	"flag"
	"log"
	"os"
	"sort"
	"strings"

	"github.com/edgeway/gateway/admin"
	"github.com/edgeway/gateway/core"
)

// reloadable are the settings a reload (SIGHUP) applies to the running
// gateway. Every other setting (listen addresses, the data directory, the
// fasthttp server settings: header and idle timeouts, connection caps,
// header buffer size) needs a restart; a reload that changes one logs so
// and keeps the running value.
var reloadable = map[string]func(cur, next *options){
	"admin-key":           func(cur, next *options) { cur.AdminKey = next.AdminKey },
	"drain-timeout":       func(cur, next *options) { cur.DrainTimeout = next.DrainTimeout },
	"client-body-timeout": func(cur, next *options) { cur.ClientBodyTimeout = next.ClientBodyTimeout },
	"client-send-timeout": func(cur, next *options) { cur.ClientSendTimeout = next.ClientSendTimeout },
	"max-header-count":    func(cur, next *options) { cur.MaxHeaderCount = next.MaxHeaderCount },
	"max-uri-bytes":       func(cur, next *options) { cur.MaxURIBytes = next.MaxURIBytes },
	"max-body-bytes":      func(cur, next *options) { cur.MaxBodyBytes = next.MaxBodyBytes },
}

// secret settings are never logged.
var secret = map[string]bool{"admin-key": true}

// reloader re-reads the command line and the config file (-c) on SIGHUP.
// It runs on the signal goroutine only.
type reloader struct {
	args  []string
	cur   *options
	proxy *core.Proxy
	api   *admin.API
}

// waitForStop reloads on every signal from hup until stop delivers one,
// which it returns.
func (r *reloader) waitForStop(stop, hup <-chan os.Signal) os.Signal {
	for {
		select {
		case s := <-stop:
			return s
		case <-hup:
			r.reload()
		}
	}
}

// reload applies the reloadable settings of the config file. Nothing is
// dropped: listeners, connections and the served configuration stay as
// they are. A file that does not parse, or that would leave a public
// admin listener without a key, changes nothing.
func (r *reloader) reload() {
	next, err := parseOptions(r.args)
	if err != nil {
		log.Printf("gateway: reload: %v; the running settings are kept", err)
		return
	}
	if next.AdminKey == "" && !isLoopbackAddr(r.cur.AdminListen) {
		log.Printf("gateway: reload: refused: the admin listener %s is not a loopback address and the new settings have no admin key; the running settings are kept", r.cur.AdminListen)
		return
	}
	before, after := flagValues(r.cur), flagValues(next)
	names := make([]string, 0, len(before))
	for name := range before {
		names = append(names, name)
	}
	sort.Strings(names)
	cur := *r.cur
	var applied []string
	for _, name := range names {
		if before[name] == after[name] || name == "c" {
			continue
		}
		shown := name + "=" + after[name]
		if secret[name] {
			shown = name + " (value not logged)"
		}
		apply, ok := reloadable[name]
		if !ok {
			log.Printf("gateway: reload: %s changed: it takes effect after a restart; still %s", shown, before[name])
			continue
		}
		apply(&cur, next)
		applied = append(applied, shown)
	}
	r.proxy.SetLimits(cur.limits())
	r.api.SetKey(cur.AdminKey)
	r.cur = &cur
	if len(applied) == 0 {
		log.Printf("gateway: reload: nothing to apply")
		return
	}
	log.Printf("gateway: reload: applied %s", strings.Join(applied, ", "))
}

// flagValues returns every setting of o by flag name, as text.
func flagValues(o *options) map[string]string {
	tmp := &options{}
	fs := newFlagSet(tmp) // binds the flags to tmp, with their defaults
	*tmp = *o             // ...then gives them o's values
	out := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { out[f.Name] = f.Value.String() })
	return out
}
