package gossip

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// partitionTransport drops every packet and stream, both ways, while
// blocked: the node is cut off as if its cable were pulled.
type partitionTransport struct {
	memberlist.NodeAwareTransport
	blocked  *atomic.Bool
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{}
	drained  chan struct{}
	once     sync.Once
}

var errPartitioned = errors.New("partitioned (test)")

func newPartitionTransport(t memberlist.NodeAwareTransport, blocked *atomic.Bool) *partitionTransport {
	p := &partitionTransport{NodeAwareTransport: t, blocked: blocked,
		packetCh: make(chan *memberlist.Packet), streamCh: make(chan net.Conn), done: make(chan struct{}), drained: make(chan struct{})}
	go func() {
		for {
			select {
			case pk := <-t.PacketCh():
				if p.blocked.Load() {
					continue
				}
				select {
				case p.packetCh <- pk:
				case <-p.done:
					p.drain()
					return
				}
			case <-p.done:
				p.drain()
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case c := <-t.StreamCh():
				if p.blocked.Load() {
					c.Close()
					continue
				}
				select {
				case p.streamCh <- c:
				case <-p.done:
					c.Close()
					p.drain()
					return
				}
			case <-p.done:
				p.drain()
				return
			}
		}
	}()
	return p
}

func (p *partitionTransport) PacketCh() <-chan *memberlist.Packet { return p.packetCh }
func (p *partitionTransport) StreamCh() <-chan net.Conn           { return p.streamCh }

func (p *partitionTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if p.blocked.Load() {
		return time.Now(), nil
	}
	return p.NodeAwareTransport.WriteTo(b, addr)
}

func (p *partitionTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if p.blocked.Load() {
		return time.Now(), nil
	}
	return p.NodeAwareTransport.WriteToAddress(b, a)
}

func (p *partitionTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if p.blocked.Load() {
		return nil, errPartitioned
	}
	return p.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (p *partitionTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if p.blocked.Load() {
		return nil, errPartitioned
	}
	return p.NodeAwareTransport.DialAddressTimeout(a, timeout)
}

// drain discards what the wrapped transport delivers until it is shut.
func (p *partitionTransport) drain() {
	for {
		select {
		case <-p.NodeAwareTransport.PacketCh():
		case c := <-p.NodeAwareTransport.StreamCh():
			c.Close()
		case <-p.drained:
			return
		}
	}
}

func (p *partitionTransport) Shutdown() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		err = p.NodeAwareTransport.Shutdown()
		close(p.drained)
	})
	return err
}
