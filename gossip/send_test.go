package gossip

import (
	"net"
	"runtime"
	"testing"
)

// TestSendBurstBounded: a burst of sends to a member that accepts and
// never answers (a stalled peer) queues a bounded number of them and
// drops the rest, instead of starting a goroutine per send (issue 15:
// a burst built an unbounded backlog).
func TestSendBurstBounded(t *testing.T) {
	cl := startCluster(t, 1, nil)
	n := cl.nodes[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accepted, never read: the sender stalls
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	to := &memberState{name: "stalled", ip: addr.IP, port: uint16(addr.Port)}
	before := runtime.NumGoroutine()
	const burst = 10_000
	for range burst {
		n.sendAsync(to, encodeNotice(msgWantPlacement, notice{Term: 1, Seq: 1, Node: n.Name()}))
	}
	grew := runtime.NumGoroutine() - before
	if grew > senders+10 {
		t.Errorf("a burst of %d sends started %d goroutines, want none beyond the %d senders", burst, grew, senders)
	}
	// The senders finish some sends while the burst is queued (a small
	// message fits the stalled peer's socket buffer), so the exact count
	// varies; most must have been dropped, none kept waiting in memory.
	if d := n.sendsDropped.Load(); d < burst/2 {
		t.Errorf("%d of %d sends dropped, want most: the queue holds %d", d, burst, sendQueue)
	}
}
