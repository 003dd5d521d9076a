package consensus

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// expectClosed checks that the server closes conn without answering.
func expectClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, err := conn.Read(buf)
	if err == nil || n != 0 {
		t.Fatalf("read %d bytes, err %v; want the connection closed", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection left open: %v", err)
	}
}

func dial(t *testing.T, addr string, first ...byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(first) > 0 {
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestMuxRejectsGarbageAndKeepsServing(t *testing.T) {
	r := newRegion(t)
	p := r.start("solo", 1, nil)
	r.waitLeader(waitLong)
	addr := p.node.Addr()

	expectClosed(t, dial(t, addr, 0xff, 'G', 'E', 'T'))                // unknown connection type
	expectClosed(t, dial(t, addr, muxForward, 0xff, 0xff, 0xff, 0xff)) // oversized frame header
	expectClosed(t, dial(t, addr, muxForward, 0, 0, 0, 3, 0xff, 0xff, 0xff))
	hdr := binary.BigEndian.AppendUint32([]byte{muxForward}, MaxFrameSize+1)
	expectClosed(t, dial(t, addr, hdr...))
	empty, _ := proto.Marshal(&shoalpb.ForwardRequest{})
	expectClosed(t, dial(t, addr, append(binary.BigEndian.AppendUint32([]byte{muxForward}, uint32(len(empty))), empty...)...))

	// A well-formed forward request still gets a proper answer.
	c := dial(t, addr)
	req := &shoalpb.ForwardRequest{TimeoutMs: 5000, Request: &shoalpb.ForwardRequest_Apply{
		Apply: &shoalpb.ApplyRequest{Command: setCmd("raw", "ok")},
	}}
	if err := writeFrame(c, muxForward, req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := readFrame(c)
	if err != nil {
		t.Fatal(err)
	}
	resp := &shoalpb.ForwardResponse{}
	if err := proto.Unmarshal(body, resp); err != nil || resp.GetCode() != shoalpb.Code_CODE_OK || resp.GetIndex() == 0 {
		t.Fatalf("response %v, err %v", resp, err)
	}
	applyOK(t, p.node, setCmd("still", "serving"))
	if v, _ := p.fsm.get("raw"); v != "ok" {
		t.Fatalf("raw=%q", v)
	}
}

func TestApplyTooLarge(t *testing.T) {
	r := newRegion(t)
	p := r.start("solo", 1, nil)
	r.waitLeader(waitLong)
	if _, err := p.node.Apply(context.Background(), make([]byte, MaxCommandSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// The largest allowed command fits a frame.
	req := &shoalpb.ForwardRequest{TimeoutMs: 1 << 40, Request: &shoalpb.ForwardRequest_Apply{
		Apply: &shoalpb.ApplyRequest{Command: make([]byte, MaxCommandSize)},
	}}
	if err := writeFrame(io.Discard, muxForward, req); err != nil {
		t.Fatalf("max command does not fit a frame: %v", err)
	}
}

func TestForwardResponseCodes(t *testing.T) {
	tests := []struct {
		err  error
		code shoalpb.Code
	}{
		{nil, shoalpb.Code_CODE_OK},
		{&rejectedError{err: errFSM}, shoalpb.Code_CODE_REJECTED},
		{ErrNotLeader, shoalpb.Code_CODE_NOT_LEADER},
		{errBadRequest, shoalpb.Code_CODE_BAD_REQUEST},
		{ErrTimeout, shoalpb.Code_CODE_TIMEOUT},
		{ErrLeadershipLost, shoalpb.Code_CODE_UNKNOWN},
		{ErrShutdown, shoalpb.Code_CODE_UNKNOWN},
	}
	for _, tt := range tests {
		if got := responseFor(Result{Index: 1}, tt.err).GetCode(); got != tt.code {
			t.Errorf("responseFor(%v) = %v, want %v", tt.err, got, tt.code)
		}
	}
}

func FuzzForwardFrame(f *testing.F) {
	for _, req := range []*shoalpb.ForwardRequest{
		{TimeoutMs: 1000, Request: &shoalpb.ForwardRequest_Apply{Apply: &shoalpb.ApplyRequest{Command: []byte("x")}}},
		{Request: &shoalpb.ForwardRequest_RemoveServer{RemoveServer: &shoalpb.RemoveServerRequest{Id: "c1"}}},
		{},
	} {
		var buf bytes.Buffer
		if err := writeFrame(&buf, 0, req); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 2, 0x08})
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := readForwardRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever decodes re-encodes and decodes to the same request.
		var buf bytes.Buffer
		if err := writeFrame(&buf, 0, req); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := readForwardRequest(&buf)
		if err != nil || !proto.Equal(req, again) {
			t.Fatalf("round trip: %v, %v vs %v", err, req, again)
		}
	})
}
