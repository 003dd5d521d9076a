package transport

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/quic-go/quic-go/quicvarint"
)

// udpProxy forwards datagrams between one client and a server on
// loopback, and can hold back what the server sends. While the client
// hears nothing from the server it cannot complete its handshake, so
// whatever it sends is 0-RTT data and the server's handshake is still
// running when it reads it.
type udpProxy struct {
	front *net.UDPConn // the client sends here
	back  *net.UDPConn // connected to the server
	wg    sync.WaitGroup

	mu      sync.Mutex
	client  *net.UDPAddr
	holding bool
	// release0RTT, when positive, ends the hold once the client has sent
	// that many bytes of 0-RTT packets: stream data, not just the PING of
	// a probe.
	release0RTT int
	held        [][]byte
}

func newUDPProxy(t *testing.T, server string) *udpProxy {
	t.Helper()
	loopback := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	front, err := net.ListenUDP("udp", loopback)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", loopback, sa)
	if err != nil {
		t.Fatal(err)
	}
	p := &udpProxy{front: front, back: back}
	p.wg.Add(2)
	go p.up()
	go p.down()
	t.Cleanup(func() {
		p.release()
		front.Close()
		back.Close()
		p.wg.Wait()
	})
	return p
}

func (p *udpProxy) Addr() string { return p.front.LocalAddr().String() }

// hold keeps back what the server sends until release, or, with
// until0RTT > 0, until the client has sent that many bytes of 0-RTT
// packets.
func (p *udpProxy) hold(until0RTT int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding, p.release0RTT = true, until0RTT
}

func (p *udpProxy) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked()
}

func (p *udpProxy) releaseLocked() {
	for _, b := range p.held {
		p.front.WriteToUDP(b, p.client)
	}
	p.held, p.holding, p.release0RTT = nil, false, 0
}

func (p *udpProxy) up() {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.front.ReadFromUDP(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.client = from
		p.back.Write(buf[:n]) // errors: the server is down, as for a lost datagram
		if p.release0RTT > 0 {
			if p.release0RTT -= zeroRTTBytes(buf[:n]); p.release0RTT <= 0 {
				p.releaseLocked()
			}
		}
		p.mu.Unlock()
	}
}

func (p *udpProxy) down() {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := p.back.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // the server's port was closed for a while
		}
		p.mu.Lock()
		switch {
		case p.client == nil:
		case p.holding:
			p.held = append(p.held, bytes.Clone(buf[:n]))
		default:
			p.front.WriteToUDP(buf[:n], p.client)
		}
		p.mu.Unlock()
	}
}

// zeroRTTBytes is the length of the 0-RTT packets in a QUIC v1 datagram,
// walking its coalesced long-header packets.
func zeroRTTBytes(b []byte) int {
	total := 0
	for len(b) > 0 && b[0]&0x80 != 0 { // long header
		typ := (b[0] & 0x30) >> 4 // v1: 0 Initial, 1 0-RTT, 2 Handshake, 3 Retry
		if typ == 3 || len(b) < 7 {
			break
		}
		p := 5
		p += 1 + int(b[p]) // destination connection ID
		if p >= len(b) {
			break
		}
		p += 1 + int(b[p]) // source connection ID
		if typ == 0 && p < len(b) {
			token, n, err := quicvarint.Parse(b[p:])
			if err != nil {
				break
			}
			p += n + int(token)
		}
		if p >= len(b) {
			break
		}
		length, n, err := quicvarint.Parse(b[p:])
		if err != nil {
			break
		}
		if typ == 1 {
			total += int(length)
		}
		p += n + int(length)
		if p > len(b) {
			break
		}
		b = b[p:]
	}
	return total
}
