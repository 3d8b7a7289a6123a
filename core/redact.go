package core

import (
	"fmt"
	"log"
	"strings"
)

// RedactingLogger is the fasthttp.Logger of the gateway's servers.
// fasthttp logs request parse errors with quoted request bytes (a header
// line, and in some branches the whole header block, even with
// SecureErrorLogMessage), and those carry clients' cookies, tokens and
// admin keys. It keeps the connection addresses and the error's wording up
// to the first quoted bytes. Printf nil logs with the standard logger.
type RedactingLogger struct {
	Logf func(format string, args ...any)
}

// Printf logs the redacted message.
func (l RedactingLogger) Printf(format string, args ...any) {
	msg := redactRequestBytes(fmt.Sprintf(format, args...))
	if l.Logf != nil {
		l.Logf("%s", msg)
		return
	}
	log.Print(msg)
}

// redactRequestBytes cuts a fasthttp server error message at the first
// quoted bytes after the connection addresses.
func redactRequestBytes(msg string) string {
	const conn = "error when serving connection "
	prefix := ""
	if strings.HasPrefix(msg, conn) {
		if i := strings.Index(msg, "\": "); i >= 0 {
			prefix, msg = msg[:i+3], msg[i+3:]
		}
	}
	if j := strings.IndexAny(msg, "\"'`"); j >= 0 {
		msg = msg[:j] + "[request bytes not logged]"
	}
	return prefix + msg
}
