// Package testport picks loopback ports for servers that tests start as
// separate processes (the gateway binary, etcd).
//
// Ports are taken below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, 32768–60999 by default). A port from that
// range, found free by listening on ":0" and closing, can be handed to any
// outgoing connection or other ":0" listener before the process under test
// binds it, or while that process is stopped for an outage or restart test
// (a client retrying against the closed port may even connect a socket to
// itself on it). Below the range only another explicit bind can take it,
// and a port is never handed out twice by one test process.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

const (
	low  = 20000
	high = 32767
)

var (
	mu   sync.Mutex
	used = map[int]bool{}
	rnd  = rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
)

// Free returns a loopback TCP port below the ephemeral range that can be
// bound now and that this process has not returned before. It is safe for
// concurrent use.
func Free(t testing.TB) int {
	t.Helper()
	return pick(t, false)
}

// FreeUDPAndTCP is Free for a server that binds the port for both UDP and
// TCP (a DNS server).
func FreeUDPAndTCP(t testing.TB) int {
	t.Helper()
	return pick(t, true)
}

func pick(t testing.TB, udp bool) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := low + rnd.IntN(high-low+1)
		if used[p] || !bindable(p, udp) {
			continue
		}
		used[p] = true
		return p
	}
	t.Fatal("testport: no free loopback port found below the ephemeral range")
	return 0
}

// bindable reports whether port p can be bound on 127.0.0.1 for TCP (and
// UDP when udp is set) at this moment.
func bindable(p int, udp bool) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	if udp {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		pc.Close()
	}
	return true
}
