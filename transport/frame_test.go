package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// frameSamples has a message of every kind a WanMessage can hold.
func frameSamples() []*shoalpb.WanMessage {
	return []*shoalpb.WanMessage{
		{},
		{Msg: &shoalpb.WanMessage_Error{Error: &shoalpb.LinkError{Code: shoalpb.LinkCode_LINK_CODE_NOT_LEADER, Message: "not the leader", LeaderAddr: "127.0.0.1:7000"}}},
		{Msg: &shoalpb.WanMessage_Ping{Ping: &shoalpb.Ping{Payload: []byte("ping")}}},
		{Msg: &shoalpb.WanMessage_Pong{Pong: &shoalpb.Pong{Payload: bytes.Repeat([]byte{0xff}, 300)}}},
		{Msg: &shoalpb.WanMessage_Sync{Sync: &shoalpb.SyncRequest{
			Region:     "eu",
			Summary:    &shoalpb.RegionSummary{Region: "eu", Leader: "eu-1", Revision: 7, Peers: []*shoalpb.WanPeer{{Cluster: "eu-1", Addr: "127.0.0.1:7001"}}},
			Watermarks: []*shoalpb.Watermark{{Origin: "us"}},
			Digest:     []byte{1, 2, 3},
			WantFull:   true,
		}}},
		{Msg: &shoalpb.WanMessage_SyncReply{SyncReply: &shoalpb.SyncReply{Region: "us", Leader: true, LeaderAddr: "127.0.0.1:7002", Merged: 3}}},
	}
}

func frameBytes(t testing.TB, m *shoalpb.WanMessage) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteFrame(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readFrameBytes(b []byte, limit int) (*shoalpb.WanMessage, error) {
	return ReadFrame(bufio.NewReader(bytes.NewReader(b)), limit)
}

func TestFrameRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	for _, m := range frameSamples() {
		if err := WriteFrame(&stream, m); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&stream)
	for i, want := range frameSamples() {
		got, err := ReadFrame(r, 0)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("frame %d: got %v, want %v", i, got, want)
		}
	}
	if _, err := ReadFrame(r, 0); !errors.Is(err, ErrFrame) || !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v, want ErrFrame and io.EOF", err)
	}
}

func TestReadFrameRefuses(t *testing.T) {
	ping := frameBytes(t, frameSamples()[2])
	huge := binary.AppendUvarint(nil, 1<<62)
	tests := []struct {
		name  string
		in    []byte
		limit int
		want  error
	}{
		{"empty", nil, 0, ErrFrame},
		{"truncated length", []byte{0x80}, 0, ErrFrame},
		{"truncated payload", ping[:len(ping)-1], 0, ErrFrame},
		{"length over the limit", ping, len(ping) - 2, ErrFrameTooLarge},
		{"huge length", huge, 0, ErrFrameTooLarge},
		{"max length, no payload", binary.AppendUvarint(nil, MaxFrameSize), 0, ErrFrame},
		{"uvarint overflow", bytes.Repeat([]byte{0xff}, 11), 0, ErrFrame},
		{"not a WanMessage", append([]byte{3}, 0xff, 0xff, 0xff), 0, ErrFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := readFrameBytes(tt.in, tt.limit)
			if !errors.Is(err, tt.want) || m != nil {
				t.Fatalf("got %v, %v; want %v", m, err, tt.want)
			}
		})
	}
}

func TestWriteFrameRefusesTooLarge(t *testing.T) {
	m := &shoalpb.WanMessage{Msg: &shoalpb.WanMessage_Ping{Ping: &shoalpb.Ping{Payload: make([]byte, MaxFrameSize)}}}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, m); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("WriteFrame: %v, want ErrFrameTooLarge", err)
	}
	if buf.Len() != 0 {
		t.Errorf("%d bytes written", buf.Len())
	}
	if err := WriteFrame(&buf, nil); err == nil {
		t.Error("WriteFrame(nil) succeeded")
	}
}

// ReadFrame reports the reader's own errors as they are: a broken stream
// is not a malformed frame.
func TestReadFrameReaderError(t *testing.T) {
	broken := errors.New("stream reset")
	ping := frameBytes(t, frameSamples()[2])
	r := bufio.NewReader(io.MultiReader(bytes.NewReader(ping[:3]), iotestErrReader{broken}))
	if _, err := ReadFrame(r, 0); !errors.Is(err, broken) || errors.Is(err, ErrFrame) {
		t.Fatalf("got %v, want the reader's error only", err)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func FuzzReadFrame(f *testing.F) {
	for _, m := range frameSamples() {
		b := frameBytes(f, m)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add(binary.AppendUvarint(nil, 1<<62))
	f.Add(binary.AppendUvarint(nil, MaxFrameSize+1))
	f.Add(bytes.Repeat([]byte{0xff}, 12))
	f.Add([]byte("\x05garbage"))
	f.Add([]byte{0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := readFrameBytes(data, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("error %v does not wrap ErrFrame", err)
			}
			return
		}
		again, err := readFrameBytes(frameBytes(t, m), 1<<20)
		if err != nil {
			t.Fatalf("re-encoded frame: %v", err)
		}
		if !proto.Equal(m, again) {
			t.Fatalf("re-encoded frame decodes to %v, want %v", again, m)
		}
	})
}
