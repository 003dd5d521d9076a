package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// The inbound guard reads memberlist's messages the way memberlist's
// msgpack codec will, to check every length against the bytes actually
// present before memberlist allocates from it. This is only the part of
// msgpack it needs: skipping any value, and reading integers, strings and
// the maps memberlist encodes its structs as.

var (
	// errOversized: a message, or what it decompresses to, is over a cap.
	errOversized = errors.New("over the size cap")
	// errMalformed: a message memberlist would refuse, or one this reader
	// cannot vouch for.
	errMalformed = errors.New("malformed")
)

// maxValueDepth bounds the nesting of msgpack arrays and maps. memberlist's
// messages nest two levels deep.
const maxValueDepth = 32

// source holds the bytes of one inbound message. With r set it reads more
// from r on demand, never beyond max bytes; without, buf is all there is.
type source struct {
	r   io.Reader
	buf []byte
	max int
}

// have makes sure that at least n bytes are buffered. It fails with
// errOversized if n is over max, errMalformed if an in-memory message is
// shorter, io.EOF if the stream ends before its first byte and
// io.ErrUnexpectedEOF if it ends later; other read errors are returned as
// they are.
func (s *source) have(n int) error {
	if n <= len(s.buf) {
		return nil
	}
	if s.r == nil {
		return fmt.Errorf("%w: truncated (%d bytes needed, %d present)", errMalformed, n, len(s.buf))
	}
	if n > s.max {
		return fmt.Errorf("%w: %d bytes, cap %d", errOversized, n, s.max)
	}
	empty := 0
	for len(s.buf) < n {
		if len(s.buf) == cap(s.buf) {
			// Grow with the data that arrives, never to a length the
			// sender claims.
			grown := make([]byte, len(s.buf), min(s.max, max(2*cap(s.buf), 4096)))
			copy(grown, s.buf)
			s.buf = grown
		}
		m, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+m]
		switch {
		case len(s.buf) >= n:
			return nil
		case err == io.EOF && len(s.buf) == 0:
			return io.EOF
		case err == io.EOF:
			return io.ErrUnexpectedEOF
		case err != nil:
			return err
		case m == 0:
			if empty++; empty > 100 {
				return io.ErrNoProgress
			}
		}
	}
	return nil
}

// mpScanner reads msgpack values from a source, from offset off.
type mpScanner struct {
	src *source
	off int
}

// take returns the next n bytes. They alias the source's buffer.
func (s *mpScanner) take(n uint64) ([]byte, error) {
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("%w: a length of %d", errOversized, n)
	}
	end := s.off + int(n)
	if err := s.src.have(end); err != nil {
		return nil, err
	}
	b := s.src.buf[s.off:end]
	s.off = end
	return b, nil
}

func (s *mpScanner) byte() (byte, error) {
	b, err := s.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// uintN reads an n-byte big-endian unsigned integer.
func (s *mpScanner) uintN(n uint64) (uint64, error) {
	b, err := s.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// skip skips one value of any type, without recursion.
func (s *mpScanner) skip() error {
	left := []uint64{1} // values still to skip at each open level
	for len(left) > 0 {
		top := len(left) - 1
		if left[top] == 0 {
			left = left[:top]
			continue
		}
		left[top]--
		b, err := s.byte()
		if err != nil {
			return err
		}
		var payload, count uint64
		switch {
		case b <= 0x7f, b >= 0xe0, b == 0xc0, b == 0xc2, b == 0xc3:
			// fixint, negative fixint, nil, false, true
		case b <= 0x8f:
			count = 2 * uint64(b&0x0f) // fixmap
		case b <= 0x9f:
			count = uint64(b & 0x0f) // fixarray
		case b <= 0xbf:
			payload = uint64(b & 0x1f) // fixstr
		default:
			payload, count, err = s.extendedHead(b)
			if err != nil {
				return err
			}
		}
		if _, err := s.take(payload); err != nil {
			return err
		}
		if count > 0 {
			if len(left) >= maxValueDepth {
				return fmt.Errorf("%w: values nested more than %d deep", errMalformed, maxValueDepth)
			}
			left = append(left, count)
		}
	}
	return nil
}

// extendedHead reads the rest of the head of a value whose type byte b is
// 0xc1..0xdf and returns how many payload bytes and contained values
// follow.
func (s *mpScanner) extendedHead(b byte) (payload, count uint64, err error) {
	switch b {
	case 0xc4, 0xd9: // bin8, str8
		payload, err = s.uintN(1)
	case 0xc5, 0xda: // bin16, str16
		payload, err = s.uintN(2)
	case 0xc6, 0xdb: // bin32, str32
		payload, err = s.uintN(4)
	case 0xc7: // ext8, then a type byte
		payload, err = s.uintN(1)
		payload++
	case 0xc8:
		payload, err = s.uintN(2)
		payload++
	case 0xc9:
		payload, err = s.uintN(4)
		payload++
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		payload = 4
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		payload = 8
	case 0xcc, 0xd0:
		payload = 1
	case 0xcd, 0xd1:
		payload = 2
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16, after a type byte
		payload = 1 + 1<<(b-0xd4)
	case 0xdc:
		count, err = s.uintN(2)
	case 0xdd:
		count, err = s.uintN(4)
	case 0xde:
		count, err = s.uintN(2)
		count *= 2
	case 0xdf:
		count, err = s.uintN(4)
		count *= 2
	default: // 0xc1 is never used
		err = fmt.Errorf("%w: msgpack type byte %#x", errMalformed, b)
	}
	return payload, count, err
}

// int reads an integer (nil reads as 0, as the codec decodes it).
func (s *mpScanner) int() (int64, error) {
	b, err := s.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case b <= 0x7f:
		return int64(b), nil
	case b >= 0xe0:
		return int64(int8(b)), nil
	case b == 0xc0:
		return 0, nil
	case b >= 0xcc && b <= 0xcf:
		v, err := s.uintN(1 << (b - 0xcc))
		if err == nil && v > math.MaxInt64 {
			err = fmt.Errorf("%w: integer %d out of range", errMalformed, v)
		}
		return int64(v), err
	case b >= 0xd0 && b <= 0xd3:
		n := uint64(1) << (b - 0xd0)
		v, err := s.uintN(n)
		if err != nil {
			return 0, err
		}
		shift := 64 - 8*n
		return int64(v<<shift) >> shift, nil // sign-extend
	}
	return 0, fmt.Errorf("%w: msgpack type byte %#x where an integer belongs", errMalformed, b)
}

// bool reads a boolean (or nil, false to the codec).
func (s *mpScanner) bool() error {
	b, err := s.byte()
	if err == nil && b != 0xc0 && b != 0xc2 && b != 0xc3 {
		err = fmt.Errorf("%w: msgpack type byte %#x where a boolean belongs", errMalformed, b)
	}
	return err
}

// bytes reads a string or binary value (nil reads as empty). The result
// aliases the source's buffer.
func (s *mpScanner) bytes() ([]byte, error) {
	b, err := s.byte()
	if err != nil {
		return nil, err
	}
	var n uint64
	switch {
	case b >= 0xa0 && b <= 0xbf:
		n = uint64(b & 0x1f)
	case b == 0xc0:
		return nil, nil
	case b == 0xc4 || b == 0xc5 || b == 0xc6 || b == 0xd9 || b == 0xda || b == 0xdb:
		if n, _, err = s.extendedHead(b); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: msgpack type byte %#x where a string belongs", errMalformed, b)
	}
	return s.take(n)
}

// fields reads a map encoding one of memberlist's structs and calls field
// for each key. Only the struct's own field names are accepted, each at
// most once: memberlist never sends others, and the codec would take the
// last of repeated keys.
func (s *mpScanner) fields(names []string, field func(name string) error) error {
	b, err := s.byte()
	if err != nil {
		return err
	}
	var n uint64
	switch {
	case b >= 0x80 && b <= 0x8f:
		n = uint64(b & 0x0f)
	case b == 0xde:
		n, err = s.uintN(2)
	case b == 0xdf:
		n, err = s.uintN(4)
	default:
		err = fmt.Errorf("%w: msgpack type byte %#x where a map belongs", errMalformed, b)
	}
	if err != nil {
		return err
	}
	if n > uint64(len(names)) {
		return fmt.Errorf("%w: %d fields, at most %d expected", errMalformed, n, len(names))
	}
	seen := make([]bool, len(names))
	for range n {
		key, err := s.bytes()
		if err != nil {
			return err
		}
		i := slices.Index(names, string(key))
		if i < 0 || seen[i] {
			return fmt.Errorf("%w: unexpected or repeated field %q", errMalformed, key)
		}
		seen[i] = true
		if err := field(names[i]); err != nil {
			return err
		}
	}
	return nil
}

// be32 decodes a big-endian uint32.
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
