package gossip

import (
	"bytes"
	"compress/lzw"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// Frames in memberlist v0.6.0's wire format, built by hand as an attacker
// would. guard_test.go checks that memberlist answers the harmless ones,
// so that these builders are known to speak its format.

const testLabel = "shoal/eu-west"

func labelled(msg []byte) []byte {
	return append([]byte{mlHasLabel, byte(len(testLabel))}, append([]byte(testLabel), msg...)...)
}

// mpStr encodes b as a msgpack raw string, as memberlist's codec does.
func mpStr(b []byte) []byte {
	switch {
	case len(b) < 32:
		return append([]byte{0xa0 | byte(len(b))}, b...)
	case len(b) < 1<<16:
		return append([]byte{0xda, byte(len(b) >> 8), byte(len(b))}, b...)
	}
	return append(binary.BigEndian.AppendUint32([]byte{0xdb}, uint32(len(b))), b...)
}

// mpUint encodes v as a msgpack uint64.
func mpUint(v uint64) []byte { return binary.BigEndian.AppendUint64([]byte{0xcf}, v) }

// mpMap encodes a map of string keys to encoded values, in order.
func mpMap(kv ...any) []byte {
	out := []byte{0x80 | byte(len(kv)/2)}
	for i := 0; i < len(kv); i += 2 {
		out = append(out, mpStr([]byte(kv[i].(string)))...)
		out = append(out, kv[i+1].([]byte)...)
	}
	return out
}

func lzwCompress(b []byte) []byte {
	var buf bytes.Buffer
	w := lzw.NewWriter(&buf, lzw.LSB, 8)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// compressedMsg wraps LZW data in a compressMsg.
func compressedMsg(lzwData []byte) []byte {
	return append([]byte{mlCompress}, mpMap("Algo", []byte{0}, "Buf", mpStr(lzwData))...)
}

func pingMsg(seq uint64) []byte { return append([]byte{mlPing}, mpMap("SeqNo", mpUint(seq))...) }

func userMsg(body []byte) []byte {
	return append(append([]byte{mlUser}, mpMap("UserMsgLen", mpUint(uint64(len(body))))...), body...)
}

func gcmFor(t testing.TB, key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return gcm
}

// sealPacket encrypts a packet's message as memberlist does (version 1).
func sealPacket(t testing.TB, key, msg []byte) []byte {
	nonce := bytes.Repeat([]byte{3}, 12)
	return gcmFor(t, key).Seal(append([]byte{1}, nonce...), nonce, msg, []byte(testLabel))
}

// sealStream encrypts a stream message as memberlist does.
func sealStream(t testing.TB, key, msg []byte) []byte {
	hdr := binary.BigEndian.AppendUint32([]byte{mlEncrypt}, uint32(1+12+len(msg)+16))
	nonce := bytes.Repeat([]byte{4}, 12)
	aad := append(append([]byte(nil), hdr...), testLabel...)
	return gcmFor(t, key).Seal(append(append(hdr, 1), nonce...), nonce, msg, aad)
}

// bitWriter packs LZW codes least significant bit first.
type bitWriter struct {
	out   []byte
	acc   uint32
	nbits uint
}

func (w *bitWriter) write(code, width uint) {
	w.acc |= uint32(code) << w.nbits
	for w.nbits += width; w.nbits >= 8; w.nbits -= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
	}
}

// lzwBomb returns LZW data (LSB, 8-bit literals, as memberlist reads it)
// that fills the code table with ever longer runs of zeros and then
// repeats its longest code, 3,839 bytes of output per 12 bits of input,
// repeats times; and the size it expands to. Go's LZW reader keeps decoding
// with a full table instead of resetting it, which is what makes the
// repeats possible.
func lzwBomb(repeats int) (data []byte, expanded int) {
	var w bitWriter
	hi, width, overflow := uint(258), uint(9), uint(512)
	w.write(0, width) // a literal zero
	expanded = 1
	for {
		// The code being defined expands to the previous code's run plus
		// one zero.
		w.write(hi, width)
		expanded += int(hi) - 256
		if hi++; hi >= overflow {
			if width == 12 {
				hi--
				break
			}
			width, overflow = width+1, overflow<<1
		}
	}
	for range repeats {
		w.write(hi, 12)
		expanded += int(hi) - 256
	}
	w.write(257, 12) // end of data
	w.write(0, 7)    // flush
	return w.out, expanded
}

func TestLZWBombExpandsAsComputed(t *testing.T) {
	data, expanded := lzwBomb(10)
	out, err := io.ReadAll(lzw.NewReader(bytes.NewReader(data), lzw.LSB, 8))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != expanded || bytes.IndexFunc(out, func(r rune) bool { return r != 0 }) >= 0 {
		t.Fatalf("%d bytes expand to %d bytes, computed %d zeros", len(data), len(out), expanded)
	}
	big, bigExpanded := lzwBomb(100_000)
	if len(big) > 160_000 || bigExpanded < 300<<20 {
		t.Fatalf("the big bomb is %d bytes expanding to %d", len(big), bigExpanded)
	}
}

func streamSource(b []byte) *source {
	return &source{r: bytes.NewReader(b), max: maxStreamBytes}
}

func TestCheckStream(t *testing.T) {
	key := bytes.Repeat([]byte{5}, 16)
	nested := []byte{mlPing}
	for range 100 {
		nested = append(nested, 0x91) // an array holding the next one
	}
	nested = append(nested, 0xc0)
	pushPull := func(nodes, state uint64, rest ...byte) []byte {
		return append(append([]byte{mlPushPull}, mpMap("Nodes", mpUint(nodes), "UserStateLen", mpUint(state), "Join", []byte{0xc2})...), rest...)
	}
	for _, tc := range []struct {
		name string
		key  []byte
		msg  []byte
		want error // nil: accepted
	}{
		{"ping", nil, labelled(pingMsg(1)), nil},
		{"user message", nil, labelled(userMsg([]byte("hello"))), nil},
		{"push/pull", nil, labelled(pushPull(2, 3, 0x80, 0x81, 0xa1, 'x', 0xc0, 1, 2, 3)), nil},
		{"compressed", nil, labelled(compressedMsg(lzwCompress(userMsg([]byte("hello"))))), nil},
		{"encrypted", key, labelled(sealStream(t, key, userMsg([]byte("hello")))), nil},
		{"encrypted and compressed", key, labelled(sealStream(t, key, compressedMsg(lzwCompress(pingMsg(2))))), nil},
		{"closed at once", nil, nil, io.EOF},
		{"no label", nil, pingMsg(1), errMalformed},
		{"another region", nil, append([]byte{mlHasLabel, 14}, append([]byte("shoal/us-east1"), pingMsg(1)...)...), errMalformed},
		{"user message claims 1 TiB", nil, labelled(append([]byte{mlUser}, mpMap("UserMsgLen", mpUint(1<<40))...)), errOversized},
		{"user message claims more than it sends", nil, labelled(append(append([]byte{mlUser}, mpMap("UserMsgLen", mpUint(3<<20))...), "short"...)), io.ErrUnexpectedEOF},
		{"negative length", nil, labelled(append([]byte{mlUser}, mpMap("UserMsgLen", []byte{0xff})...)), errMalformed},
		{"header as an array", nil, labelled([]byte{mlUser, 0x91, 0x05, 1, 2, 3, 4, 5}), errMalformed},
		{"repeated field", nil, labelled(append([]byte{mlUser}, mpMap("UserMsgLen", []byte{1}, "UserMsgLen", mpUint(1<<40))...)), errMalformed},
		{"unknown field", nil, labelled(append([]byte{mlUser}, mpMap("userMsgLen", []byte{1})...)), errMalformed},
		{"a million nodes", nil, labelled(pushPull(1<<20, 0)), errOversized},
		{"nodes missing", nil, labelled(pushPull(3, 0, 0x80)), io.ErrUnexpectedEOF},
		{"user state of 1 GiB", nil, labelled(pushPull(0, 1<<30)), errOversized},
		{"nested 100 deep", nil, labelled(nested), errMalformed},
		{"compressed twice", nil, labelled(compressedMsg(lzwCompress(compressedMsg(lzwCompress(pingMsg(1)))))), errMalformed},
		{"expands to nothing", nil, labelled(compressedMsg(lzwCompress(nil))), errMalformed},
		{"unknown algorithm", nil, labelled(append([]byte{mlCompress}, mpMap("Algo", []byte{1}, "Buf", mpStr(nil))...)), errMalformed},
		{"unknown type", nil, labelled([]byte{mlHasCRC}), errMalformed},
		{"plaintext to an encrypted pool", key, labelled(pingMsg(1)), errMalformed},
		{"encrypted to a plaintext pool", nil, labelled(sealStream(t, key, pingMsg(1))), errMalformed},
		{"another key", key, labelled(sealStream(t, bytes.Repeat([]byte{6}, 16), pingMsg(1))), errMalformed},
		{"encrypted, claims 2 GiB", key, labelled([]byte{mlEncrypt, 0x80, 0, 0, 0}), errOversized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := tc.msg
			if tc.want == nil {
				stream = append(stream, "next message"...)
			}
			src := streamSource(stream)
			n, err := checker{label: testLabel, key: tc.key}.checkStream(src, true)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("checkStream: %v, want %v", err, tc.want)
			}
			if err == nil && n != len(tc.msg) {
				t.Errorf("message length %d, want %d", n, len(tc.msg))
			}
			// The buffer grows with the bytes that arrive, not with what
			// a header claims.
			if c := cap(src.buf); c > 4096 {
				t.Errorf("buffered %d bytes for a message of %d", c, len(tc.msg))
			}
		})
	}
}

func TestCheckPacket(t *testing.T) {
	key := bytes.Repeat([]byte{5}, 16)
	compound := func(parts ...[]byte) []byte {
		out := []byte{mlCompound, byte(len(parts))}
		for _, p := range parts {
			out = binary.BigEndian.AppendUint16(out, uint16(len(p)))
		}
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	// LZW data expanding to 600 KiB: two fit in no packet's budget.
	big := compressedMsg(lzwCompress(userMsg(bytes.Repeat([]byte{'a'}, 600<<10))))
	crc := func(msg []byte) []byte { return append([]byte{mlHasCRC, 0, 0, 0, 0}, msg...) }
	deep := pingMsg(1)
	for range 6 {
		deep = compressedMsg(lzwCompress(deep))
	}
	vsn0 := func(pad byte) []byte { // version 0 with a given last byte of padding
		nonce := make([]byte, 12)
		plain := append(pingMsg(1), bytes.Repeat([]byte{pad}, 3)...)
		return gcmFor(t, key).Seal(append([]byte{0}, nonce...), nonce, plain, []byte(testLabel))
	}
	for _, tc := range []struct {
		name string
		key  []byte
		pkt  []byte
		want error
	}{
		{"ping", nil, labelled(pingMsg(1)), nil},
		{"with crc", nil, labelled(crc(pingMsg(1))), nil},
		{"compound of compressed", nil, labelled(compound(pingMsg(1), big)), nil},
		{"encrypted", key, labelled(sealPacket(t, key, crc(big))), nil},
		{"truncated compound", nil, labelled(compound(pingMsg(1))[:4]), nil},
		{"version 0 padding", key, labelled(vsn0(3)), nil},
		{"no label", nil, pingMsg(1), errMalformed},
		{"over the packet size", nil, labelled(make([]byte, 70<<10)), errOversized},
		{"compressed parts over the budget together", nil, labelled(compound(big, big)), errOversized},
		{"compressed six deep", nil, labelled(deep), errMalformed},
		{"not encrypted", key, labelled(pingMsg(1)), errMalformed},
		{"another key", key, labelled(sealPacket(t, bytes.Repeat([]byte{6}, 16), pingMsg(1))), errMalformed},
		{"version 0 padding longer than a block", key, labelled(vsn0(200)), errMalformed},
		{"compress value claims more than the packet", nil, labelled([]byte{mlCompress, 0x82, 0xa4, 'A', 'l', 'g', 'o', 0, 0xa3, 'B', 'u', 'f', 0xdb, 0x7f, 0, 0, 0}), errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checker{label: testLabel, key: tc.key}.checkPacket(tc.pkt)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("checkPacket: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSkipMsgpack(t *testing.T) {
	for _, tc := range []struct {
		name string
		val  []byte
		ok   bool
	}{
		{"fixint", []byte{0x05}, true},
		{"negative", []byte{0xff}, true},
		{"float64", append([]byte{0xcb}, make([]byte, 8)...), true},
		{"map of arrays", []byte{0x81, 0xa1, 'k', 0x92, 0x01, 0xc3}, true},
		{"ext8", []byte{0xc7, 0x02, 0x01, 0xaa, 0xbb}, true},
		{"fixext16", append([]byte{0xd8, 0x01}, make([]byte, 16)...), true},
		{"bin16", append([]byte{0xc5, 0x00, 0x03}, 1, 2, 3), true},
		{"array32 claims 4 billion", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, false},
		{"str32 claims 4 GiB", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, false},
		{"never used", []byte{0xc1}, false},
	} {
		s := &mpScanner{src: &source{buf: append(tc.val, 0x42)}}
		err := s.skip()
		if (err == nil) != tc.ok {
			t.Errorf("%s: skip: %v", tc.name, err)
		}
		if err == nil && s.off != len(tc.val) {
			t.Errorf("%s: skipped %d bytes, want %d", tc.name, s.off, len(tc.val))
		}
	}
}

func FuzzCheckPacket(f *testing.F) {
	key := bytes.Repeat([]byte{5}, 16)
	f.Add(labelled(pingMsg(1)), false)
	f.Add(labelled(compressedMsg(lzwCompress(userMsg([]byte("x"))))), false)
	f.Add(labelled([]byte{mlCompound, 2, 0, 1, 0, 3, 0, 8, 1, 2}), false)
	f.Add(labelled(sealPacket(f, key, pingMsg(3))), true)
	f.Fuzz(func(t *testing.T, pkt []byte, encrypted bool) {
		c := checker{label: testLabel}
		if encrypted {
			c.key = key
		}
		err := c.checkPacket(pkt)
		if err != nil && !errors.Is(err, errMalformed) && !errors.Is(err, errOversized) {
			t.Fatalf("checkPacket: unexpected error %v", err)
		}
	})
}

func FuzzCheckStream(f *testing.F) {
	key := bytes.Repeat([]byte{5}, 16)
	f.Add(labelled(pingMsg(1)), false, true)
	f.Add(labelled(userMsg([]byte("hello"))), false, true)
	f.Add(compressedMsg(lzwCompress(userMsg([]byte("x")))), false, false)
	f.Add(labelled(sealStream(f, key, pingMsg(3))), true, true)
	f.Fuzz(func(t *testing.T, msg []byte, encrypted, labelledMsg bool) {
		c := checker{label: testLabel}
		if encrypted {
			c.key = key
		}
		src := streamSource(msg)
		n, err := c.checkStream(src, labelledMsg)
		if err == nil && (n <= 0 || n > len(msg)) {
			t.Fatalf("accepted a message of %d bytes out of %d", n, len(msg))
		}
		if c := cap(src.buf); c > max(4096, 2*len(msg)) {
			t.Fatalf("buffered %d bytes for %d", c, len(msg))
		}
		if err != nil && !strings.Contains(err.Error(), "EOF") && !errors.Is(err, errMalformed) && !errors.Is(err, errOversized) {
			t.Fatalf("checkStream: unexpected error %v", err)
		}
	})
}
