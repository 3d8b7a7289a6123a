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
// admin keys. For those messages it keeps the connection addresses and the
// error's wording up to the first quoted bytes. Logf nil logs with the
// standard logger.
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

// redactRequestBytes cuts a fasthttp request-reading error message at the
// first quoted bytes after the connection addresses. Other messages (a TLS
// error naming an SNI, an upstream error) pass unchanged.
func redactRequestBytes(msg string) string {
	if !strings.Contains(msg, "error when reading request") {
		return msg
	}
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
