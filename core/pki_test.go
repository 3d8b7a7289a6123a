package core

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/edgeway/gateway/internal/testpki"
)

// jsonString returns s as a JSON string literal without the quotes.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

// fixedPKI is one CA and a few certificates shared by table tests (and
// fuzz seeds), generated once per test binary.
var fixedPKI = sync.OnceValue(func() struct {
	CA             *testpki.CA
	Server, Client testpki.Pair
	Other          testpki.Pair // from another CA
} {
	ca := testpki.NewCA("test CA")
	other := testpki.NewCA("other CA")
	return struct {
		CA             *testpki.CA
		Server, Client testpki.Pair
		Other          testpki.Pair
	}{ca, ca.Issue(false, "a.test", "*.b.test"), ca.Issue(true, "client"), other.Issue(false, "a.test")}
})
