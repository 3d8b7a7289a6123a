package pool

// Quiet reports whether nothing waits to be read on c: no buffered byte
// and, by a non-blocking peek at the socket, none in the kernel either.
// A response read to the end its framing declared must leave its
// connection quiet; a byte after it means the upstream sent more than it
// declared (or closed), and the connection must not be reused, or those
// bytes would be read as the start of the next request's response. It
// costs one system call, so callers use it where the response was large
// enough to bypass the read buffer (bytes past it are then still in the
// kernel).
func (c *Conn) Quiet() bool { return c.alive() }
