package core

import "testing"

// BenchmarkCheckRequest measures the edge checks of a typical request
// (seven header fields, a query string, a body length).
func BenchmarkCheckRequest(b *testing.B) {
	l := DefaultLimits()
	l.MaxBodyBytes = 1 << 20
	ctx := parsedCtx(b, "POST /api/v1/items?id=42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\n"+
		"Accept: */*\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-Request-Id: abc\r\n"+
		"Cookie: session=0123456789abcdef0123456789abcdef\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if l.checkRequest(ctx) != 0 {
			b.Fatal("refused")
		}
	}
}
