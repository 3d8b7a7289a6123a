package core

import (
	"io"
	"net"
	"testing"
	"time"
)

// edgePair returns a server-side edge connection and its client.
func edgePair(t *testing.T) (net.Listener, *edgeConn, net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(raw, 0)
	t.Cleanup(func() { ln.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return ln, c.(*edgeConn), client
}

func TestLingeringClose(t *testing.T) {
	_, c, client := edgePair(t)
	io.WriteString(client, "unread input")
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, "answer")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The client may go on sending (it is drained), then reads the answer
	// and a clean end.
	if _, err := client.Write(make([]byte, 256<<10)); err != nil {
		t.Fatalf("write after the gateway closed: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(client)
	if string(b) != "answer" || err != nil {
		t.Fatalf("client read %q, %v; want the answer and EOF", b, err)
	}
}

// TestCloseDuringRead checks Close does not wait for a parked Read (as
// fasthttp closes idle connections from its shutdown loop).
func TestCloseDuringRead(t *testing.T) {
	_, c, _ := edgePair(t)
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close blocked behind a parked Read")
	}
	if err := <-readErr; err == nil {
		t.Fatal("the parked Read did not end")
	}
}

func TestCloseUnused(t *testing.T) {
	ln, unused, _ := edgePair(t)
	client2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client2.Close()
	c2, _ := ln.Accept()
	used := c2.(*edgeConn)
	io.WriteString(client2, "G")
	used.Read(make([]byte, 1))

	CloseUnused(ln)
	if !unused.closed.Load() || used.closed.Load() {
		t.Fatalf("closed: unused %v, used %v; want only the unused one", unused.closed.Load(), used.closed.Load())
	}
}
