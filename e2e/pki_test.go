package e2e

import "encoding/json"

// Certificates for the TLS tests come from internal/testpki, generated in
// memory for each run.

// js quotes s as a JSON string (with the quotes).
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
