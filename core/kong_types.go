package core

import (
	"errors"
	"fmt"

	json "github.com/goccy/go-json"
)

// The typed forms of stored Kong entities, as the translation reads them.

// KongService is a stored Kong service.
type KongService struct {
	ID                string         `json:"id"`
	Name              *string        `json:"name"`
	Protocol          string         `json:"protocol"`
	Host              string         `json:"host"`
	Port              int            `json:"port"`
	Path              *string        `json:"path"`
	Retries           int            `json:"retries"`
	ConnectTimeout    int            `json:"connect_timeout"`
	WriteTimeout      int            `json:"write_timeout"`
	ReadTimeout       int            `json:"read_timeout"`
	Enabled           bool           `json:"enabled"`
	TLSVerify         *bool          `json:"tls_verify"`
	TLSVerifyDepth    *int           `json:"tls_verify_depth"`
	CACertificates    []string       `json:"ca_certificates"`
	ClientCertificate map[string]any `json:"client_certificate"`
	CreatedAt         int64          `json:"created_at"`
}

// KongRef is a foreign key as Kong stores it.
type KongRef struct {
	ID string `json:"id"`
}

// KongRoute is a stored Kong route.
type KongRoute struct {
	ID            string              `json:"id"`
	Name          *string             `json:"name"`
	Protocols     []string            `json:"protocols"`
	Methods       []string            `json:"methods"`
	Hosts         []string            `json:"hosts"`
	Paths         []string            `json:"paths"`
	Headers       map[string][]string `json:"headers"`
	SNIs          []string            `json:"snis"`
	Sources       []any               `json:"sources"`
	Destinations  []any               `json:"destinations"`
	StripPath     bool                `json:"strip_path"`
	PreserveHost  bool                `json:"preserve_host"`
	PathHandling  string              `json:"path_handling"`
	RegexPriority int                 `json:"regex_priority"`
	Service       *KongRef            `json:"service"`
	CreatedAt     int64               `json:"created_at"`
}

// KongUpstream is a stored Kong upstream.
type KongUpstream struct {
	ID                     string           `json:"id"`
	Name                   string           `json:"name"`
	Algorithm              string           `json:"algorithm"`
	HashOn                 string           `json:"hash_on"`
	HashFallback           string           `json:"hash_fallback"`
	HashOnHeader           *string          `json:"hash_on_header"`
	HashFallbackHeader     *string          `json:"hash_fallback_header"`
	HashOnCookie           *string          `json:"hash_on_cookie"`
	HashOnCookiePath       string           `json:"hash_on_cookie_path"`
	HashOnQueryArg         *string          `json:"hash_on_query_arg"`
	HashFallbackQueryArg   *string          `json:"hash_fallback_query_arg"`
	HashOnURICapture       *string          `json:"hash_on_uri_capture"`
	HashFallbackURICapture *string          `json:"hash_fallback_uri_capture"`
	Slots                  int              `json:"slots"`
	Healthchecks           KongHealthchecks `json:"healthchecks"`
	HostHeader             *string          `json:"host_header"`
	ClientCertificate      map[string]any   `json:"client_certificate"`
	UseSRVName             bool             `json:"use_srv_name"`
	CreatedAt              int64            `json:"created_at"`
}

// KongHealthchecks is an upstream's `healthchecks`.
type KongHealthchecks struct {
	Active struct {
		Type                   string              `json:"type"`
		Timeout                float64             `json:"timeout"`
		Concurrency            int                 `json:"concurrency"`
		HTTPPath               string              `json:"http_path"`
		HTTPSSNI               *string             `json:"https_sni"`
		HTTPSVerifyCertificate bool                `json:"https_verify_certificate"`
		Headers                map[string][]string `json:"headers"`
		Healthy                struct {
			Interval     float64 `json:"interval"`
			HTTPStatuses []int   `json:"http_statuses"`
			Successes    int     `json:"successes"`
		} `json:"healthy"`
		Unhealthy struct {
			Interval     float64 `json:"interval"`
			HTTPStatuses []int   `json:"http_statuses"`
			TCPFailures  int     `json:"tcp_failures"`
			Timeouts     int     `json:"timeouts"`
			HTTPFailures int     `json:"http_failures"`
		} `json:"unhealthy"`
	} `json:"active"`
	Passive struct {
		Type    string `json:"type"`
		Healthy struct {
			HTTPStatuses []int `json:"http_statuses"`
			Successes    int   `json:"successes"`
		} `json:"healthy"`
		Unhealthy struct {
			HTTPStatuses []int `json:"http_statuses"`
			TCPFailures  int   `json:"tcp_failures"`
			Timeouts     int   `json:"timeouts"`
			HTTPFailures int   `json:"http_failures"`
		} `json:"unhealthy"`
	} `json:"passive"`
	Threshold float64 `json:"threshold"`
}

// KongTarget is a stored Kong target.
type KongTarget struct {
	ID        string  `json:"id"`
	Target    string  `json:"target"` // host:port, IPv6 bracketed
	Weight    int     `json:"weight"`
	Upstream  KongRef `json:"upstream"`
	CreatedAt float64 `json:"created_at"`
}

// KongEntities holds the Kong entities of a configuration by id.
type KongEntities struct {
	Services  map[string]*KongService
	Routes    map[string]*KongRoute
	Upstreams map[string]*KongUpstream
	Targets   map[string]*KongTarget
}

func newKongEntities() KongEntities {
	return KongEntities{
		Services:  map[string]*KongService{},
		Routes:    map[string]*KongRoute{},
		Upstreams: map[string]*KongUpstream{},
		Targets:   map[string]*KongTarget{},
	}
}

// ParseKong decodes a stored Kong entity of kind into its typed form (one
// of *KongService, *KongRoute, *KongUpstream, *KongTarget). It checks the
// schema and KongUnsupported again, so that a value written behind the
// Admin API's back (e.g. straight into etcd) cannot reach the translation
// unchecked.
func ParseKong(kind Kind, value []byte) (any, error) {
	v, verr := decodeJSON(value)
	if verr != nil {
		return nil, verr
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("a Kong entity must be a JSON object")
	}
	norm, kerr := NormalizeKong(kind, obj)
	if kerr == nil {
		kerr = KongUnsupported(kind, norm)
	}
	if kerr != nil {
		return nil, kerr
	}
	var out any
	switch kind {
	case KindKongServices:
		out = &KongService{}
	case KindKongRoutes:
		out = &KongRoute{}
	case KindKongUpstreams:
		out = &KongUpstream{}
	case KindKongTargets:
		out = &KongTarget{}
	default:
		return nil, fmt.Errorf("unknown Kong kind %s", kind)
	}
	if err := json.Unmarshal(value, out); err != nil {
		return nil, err
	}
	return out, nil
}

// set stores a parsed entity under its kind's map.
func (k *KongEntities) set(id string, v any) {
	switch x := v.(type) {
	case *KongService:
		x.ID = id
		k.Services[id] = x
	case *KongRoute:
		x.ID = id
		k.Routes[id] = x
	case *KongUpstream:
		x.ID = id
		k.Upstreams[id] = x
	case *KongTarget:
		x.ID = id
		k.Targets[id] = x
	}
}
