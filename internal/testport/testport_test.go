package testport

import (
	"fmt"
	"net"
	"testing"
)

func TestFreePortsAreDistinctBindableAndBelowTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		p := Free(t)
		if i%2 == 1 {
			p = FreeUDPAndTCP(t)
		}
		if p < low || p > high {
			t.Fatalf("port %d outside [%d, %d]", p, low, high)
		}
		if seen[p] {
			t.Fatalf("port %d returned twice", p)
		}
		seen[p] = true
	}
	p := FreeUDPAndTCP(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("TCP bind of a returned port: %v", err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("UDP bind of a returned port: %v", err)
	}
	pc.Close()
	if bindable(p, false) {
		t.Fatalf("port %d reported bindable while a listener holds it", p)
	}
}
