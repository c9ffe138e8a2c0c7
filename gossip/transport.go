package gossip

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Stats counts the gossip traffic of one node: UDP packets and TCP stream
// bytes as they cross the transport (encrypted and compressed, without IP
// and UDP/TCP headers).
type Stats struct {
	// PacketsSent and PacketsReceived count UDP packets (probes, acks,
	// gossip).
	PacketsSent, PacketsReceived uint64
	// BytesSent and BytesReceived count UDP and TCP payload bytes.
	BytesSent, BytesReceived uint64
	// StreamsOpened counts TCP streams, both directions (push-pull,
	// joins, placement pulls, fallback pings).
	StreamsOpened uint64
}

// countingTransport wraps memberlist's transport to count traffic.
type countingTransport struct {
	memberlist.NodeAwareTransport
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{} // closed when Shutdown starts
	drained  chan struct{} // closed when the wrapped transport has shut down
	once     sync.Once

	pktOut, pktIn, bytesOut, bytesIn, streams atomic.Uint64
}

func newCountingTransport(t memberlist.NodeAwareTransport) *countingTransport {
	c := &countingTransport{
		NodeAwareTransport: t,
		packetCh:           make(chan *memberlist.Packet),
		streamCh:           make(chan net.Conn),
		done:               make(chan struct{}),
		drained:            make(chan struct{}),
	}
	go c.forwardPackets()
	go c.forwardStreams()
	return c
}

func (c *countingTransport) forwardPackets() {
	in := c.NodeAwareTransport.PacketCh()
	for {
		select {
		case p := <-in:
			c.pktIn.Add(1)
			c.bytesIn.Add(uint64(len(p.Buf)))
			select {
			case c.packetCh <- p:
			case <-c.done:
				c.drain()
				return
			}
		case <-c.done:
			c.drain()
			return
		}
	}
}

func (c *countingTransport) forwardStreams() {
	in := c.NodeAwareTransport.StreamCh()
	for {
		select {
		case conn := <-in:
			c.streams.Add(1)
			select {
			case c.streamCh <- &countingConn{Conn: conn, t: c}:
			case <-c.done:
				_ = conn.Close()
				c.drain()
				return
			}
		case <-c.done:
			c.drain()
			return
		}
	}
}

// drain discards what the wrapped transport still delivers until it has
// shut down: its listeners block on their channels, and its Shutdown waits
// for them.
func (c *countingTransport) drain() {
	for {
		select {
		case <-c.NodeAwareTransport.PacketCh():
		case conn := <-c.NodeAwareTransport.StreamCh():
			_ = conn.Close()
		case <-c.drained:
			return
		}
	}
}

// PacketCh delivers counted incoming packets.
func (c *countingTransport) PacketCh() <-chan *memberlist.Packet { return c.packetCh }

// StreamCh delivers counted incoming streams.
func (c *countingTransport) StreamCh() <-chan net.Conn { return c.streamCh }

// WriteTo counts and sends a packet.
func (c *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	c.pktOut.Add(1)
	c.bytesOut.Add(uint64(len(b)))
	return c.NodeAwareTransport.WriteTo(b, addr)
}

// WriteToAddress counts and sends a packet.
func (c *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	c.pktOut.Add(1)
	c.bytesOut.Add(uint64(len(b)))
	return c.NodeAwareTransport.WriteToAddress(b, a)
}

// DialTimeout opens a counted stream.
func (c *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := c.NodeAwareTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	c.streams.Add(1)
	return &countingConn{Conn: conn, t: c}, nil
}

// DialAddressTimeout opens a counted stream.
func (c *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	conn, err := c.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	c.streams.Add(1)
	return &countingConn{Conn: conn, t: c}, nil
}

// Shutdown stops the forwarders and the wrapped transport.
func (c *countingTransport) Shutdown() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		err = c.NodeAwareTransport.Shutdown()
		close(c.drained)
	})
	return err
}

func (c *countingTransport) stats() Stats {
	return Stats{
		PacketsSent: c.pktOut.Load(), PacketsReceived: c.pktIn.Load(),
		BytesSent: c.bytesOut.Load(), BytesReceived: c.bytesIn.Load(),
		StreamsOpened: c.streams.Load(),
	}
}

// countingConn counts a stream's bytes.
type countingConn struct {
	net.Conn
	t *countingTransport
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.t.bytesIn.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.t.bytesOut.Add(uint64(n))
	return n, err
}
