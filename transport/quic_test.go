package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// rawConn dials addr with quic-go directly, from a loopback socket, as a
// misbehaving or foreign client would.
func rawConn(t *testing.T, addr string, tlsConf *tls.Config) *quic.Conn {
	t.Helper()
	c, err := rawDial(t, addr, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rawDial(t *testing.T, addr string, tlsConf *tls.Config) (*quic.Conn, error) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { tr.Close(); udp.Close() })
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tr.Dial(within(t, 10*time.Second), ua, tlsConf, &quic.Config{})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	return c, nil
}

// rawRefused checks that a client dialling by hand with tlsConf is
// refused: by the handshake, or when it sends its first request (in TLS
// 1.3 the client may finish before the server has checked it).
func rawRefused(t *testing.T, addr string, tlsConf *tls.Config) {
	t.Helper()
	c, err := rawDial(t, addr, tlsConf)
	if err != nil {
		return
	}
	if ans, err := rawExchange(t, c, frameBytes(t, ping("x"))); err == nil {
		t.Errorf("answered %v", ans)
	}
}

// rawExchange sends raw bytes on a new stream and reads one answer frame.
func rawExchange(t *testing.T, c *quic.Conn, request []byte) (*shoalpb.WanMessage, error) {
	t.Helper()
	ctx := within(t, 10*time.Second)
	str, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	defer context.AfterFunc(ctx, func() { str.CancelRead(0); str.CancelWrite(0) })()
	if _, err := str.Write(request); err != nil {
		return nil, err
	}
	if err := str.Close(); err != nil {
		return nil, err
	}
	return ReadFrame(bufio.NewReader(str), MaxFrameSize)
}

func TestQUICRefusesCertificatesOutsideTheMesh(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	other, otherPEM := newTestCA(t, "prod")
	server := newTestQUIC(t, testQUICConfig(t, material(t, ca, caPEM, usID)))
	rec := &recorder{}
	server.Serve(rec.handle)

	t.Run("client of another CA", func(t *testing.T) {
		rogue := material(t, other, otherPEM, euID)
		// A link refuses the server first: it is not of its CA.
		link := newTestQUIC(t, testQUICConfig(t, rogue))
		_, err := callPing(t, link, server.Addr(), CallOptions{})
		if !errors.Is(err, ErrIdentity) || !errors.Is(err, ErrUnreachable) {
			t.Errorf("link: got %v, want ErrIdentity and ErrUnreachable", err)
		}
		// A client that does not check the server is refused by it.
		conf := rogue.WANTLSConfig()
		conf.VerifyConnection = nil
		rawRefused(t, server.Addr(), conf)
	})
	t.Run("client without a certificate", func(t *testing.T) {
		cfg := testQUICConfig(t, nil)
		cfg.Insecure = true
		link := newTestQUIC(t, cfg)
		_, err := callPing(t, link, server.Addr(), CallOptions{})
		if !errors.Is(err, ErrIdentity) || !errors.Is(err, ErrUnreachable) {
			t.Errorf("got %v, want ErrIdentity (refused by the server) and ErrUnreachable", err)
		}
	})
	t.Run("server of another CA", func(t *testing.T) {
		rogue := newTestQUIC(t, testQUICConfig(t, material(t, other, otherPEM, usID)))
		rogue.Serve(rec.handle)
		client := newTestQUIC(t, testQUICConfig(t, material(t, ca, caPEM, euID)))
		_, err := callPing(t, client, rogue.Addr(), CallOptions{})
		if !errors.Is(err, ErrIdentity) || !errors.Is(err, ErrUnreachable) {
			t.Errorf("got %v, want ErrIdentity and ErrUnreachable", err)
		}
	})
	t.Run("CLI client certificate", func(t *testing.T) {
		alice := material(t, ca, caPEM, ClientIdentity("prod", "alice"))
		if _, err := NewQUICLink(testQUICConfig(t, alice)); !errors.Is(err, ErrBadConfig) {
			t.Errorf("NewQUICLink with a client certificate: %v, want ErrBadConfig", err)
		}
		// A client that dials by hand with it is refused by the server.
		conf := alice.WANTLSConfig()
		conf.Certificates = []tls.Certificate{alice.Cert}
		rawRefused(t, server.Addr(), conf)
	})
	if rec.count() != 0 {
		t.Errorf("%d requests from outside the mesh handled", rec.count())
	}
}

func TestQUICBadFramesAreAnsweredAndTheConnectionGoesOn(t *testing.T) {
	ca, caPEM := newTestCA(t, "prod")
	server := newTestQUIC(t, testQUICConfig(t, material(t, ca, caPEM, usID)))
	rec := &recorder{}
	server.Serve(rec.handle)
	c := rawConn(t, server.Addr(), material(t, ca, caPEM, euID).WANTLSConfig())

	valid := frameBytes(t, ping("hello"))
	tests := []struct {
		name string
		in   []byte
	}{
		{"length over MaxFrame", binary.AppendUvarint(nil, MaxFrameSize+1)},
		{"huge length", binary.AppendUvarint(nil, 1<<62)},
		{"not a WanMessage", []byte{3, 0xff, 0xff, 0xff}},
		{"truncated", valid[:len(valid)-1]},
		{"empty", nil},
		{"two frames", append(append([]byte{}, valid...), valid...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, err := rawExchange(t, c, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if code := ans.GetError().GetCode(); code != shoalpb.LinkCode_LINK_CODE_BAD_REQUEST {
				t.Errorf("answer %v, want BAD_REQUEST", ans)
			}
		})
	}
	ans, err := rawExchange(t, c, valid)
	if err != nil || string(ans.GetPong().GetPayload()) != "hello" {
		t.Fatalf("a valid request on the same connection: %v, %v", ans, err)
	}
	if rec.count() != 1 {
		t.Errorf("%d requests handled, want 1", rec.count())
	}
}

func TestQUICInsecure(t *testing.T) {
	cfg := func() QUICConfig {
		c := testQUICConfig(t, nil)
		c.Insecure = true
		return c
	}
	a := newTestQUIC(t, cfg())
	b := newTestQUIC(t, cfg())
	rec := &recorder{}
	b.Serve(rec.handle)
	peer, err := callPing(t, a, b.Addr(), CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if peer.Identity != (Identity{}) || rec.last().from.Identity != (Identity{}) {
		t.Errorf("identities %+v and %+v on an insecure link", peer, rec.last().from)
	}
}
