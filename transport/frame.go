package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/shoalmesh/shoal/api/shoalpb"
)

// MaxFrameSize is the largest WanMessage a frame may carry, in bytes
// (without its length prefix). Links may set a lower limit.
const MaxFrameSize = 16 << 20

var (
	// ErrFrame is returned when bytes from the network are not a frame: a
	// truncated or malformed length prefix, a truncated payload, or a
	// payload that is not a WanMessage.
	ErrFrame = errors.New("transport: malformed frame")

	// ErrFrameTooLarge is returned when a frame is longer than the limit:
	// by ReadFrame before it allocates anything, and by WriteFrame and Call
	// before they send anything. It wraps ErrFrame.
	ErrFrameTooLarge = fmt.Errorf("%w: larger than the limit", ErrFrame)
)

// FrameReader is what ReadFrame reads from, usually a *bufio.Reader: the
// length prefix is read byte by byte.
type FrameReader interface {
	io.Reader
	io.ByteReader
}

// WriteFrame writes m as one frame: its length as a uvarint, then its
// protobuf encoding, in a single Write. A message larger than MaxFrameSize
// is refused with ErrFrameTooLarge and nothing is written.
func WriteFrame(w io.Writer, m *shoalpb.WanMessage) error {
	b, err := encodeFrame(m, MaxFrameSize)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// encodeFrame returns m as a frame, refusing a message larger than limit.
func encodeFrame(m *shoalpb.WanMessage, limit int) ([]byte, error) {
	if m == nil {
		return nil, errors.New("transport: nil message")
	}
	size := proto.Size(m)
	if size > limit {
		return nil, fmt.Errorf("%w: a message of %d bytes, the limit is %d", ErrFrameTooLarge, size, limit)
	}
	b := make([]byte, 0, binary.MaxVarintLen64+size)
	b = binary.AppendUvarint(b, uint64(size))
	b, err := proto.MarshalOptions{}.MarshalAppend(b, m)
	if err != nil {
		return nil, fmt.Errorf("transport: encoding a frame: %w", err)
	}
	return b, nil
}

// ReadFrame reads one frame of at most limit bytes (MaxFrameSize if limit
// is not positive). A length over the limit is refused with
// ErrFrameTooLarge before anything is allocated; the payload buffer grows
// with the bytes that actually arrive, so a peer that announces a large
// frame and sends little costs little. Malformed input is refused with an
// error wrapping ErrFrame (an empty input wraps io.EOF too); errors of r
// itself (a reset stream, a deadline) are returned as they are.
func ReadFrame(r FrameReader, limit int) (*shoalpb.WanMessage, error) {
	if limit <= 0 {
		limit = MaxFrameSize
	}
	n, err := readLength(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: a frame of %d bytes, the limit is %d", ErrFrameTooLarge, n, limit)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(n, 64<<10)))
	got, err := io.CopyN(&buf, r, int64(n))
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: truncated: %d of %d bytes", ErrFrame, got, n)
		}
		return nil, err
	}
	m := new(shoalpb.WanMessage)
	if err := proto.Unmarshal(buf.Bytes(), m); err != nil {
		return nil, fmt.Errorf("%w: not a WanMessage: %v", ErrFrame, err)
	}
	return m, nil
}

// readLength reads a frame's uvarint length prefix.
func readLength(r io.ByteReader) (uint64, error) {
	var n uint64
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		switch {
		case errors.Is(err, io.EOF) && i == 0:
			return 0, fmt.Errorf("%w: no frame: %w", ErrFrame, io.EOF)
		case errors.Is(err, io.EOF):
			return 0, fmt.Errorf("%w: truncated length: %w", ErrFrame, io.ErrUnexpectedEOF)
		case err != nil:
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, fmt.Errorf("%w: the length overflows 64 bits", ErrFrame)
		}
		n |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return n, nil
		}
	}
}
