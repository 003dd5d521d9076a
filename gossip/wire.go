package gossip

import (
	"bytes"
	"compress/lzw"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
)

// memberlist v0.6.0's wire format, as the inbound guard checks it (net.go,
// label.go, security.go and util.go of memberlist). A packet is
//
//	[244 len label] ( sealed | [12 crc32] message )
//
// where sealed, with a key, is [version nonce(12) AES-GCM(message)] with the
// label as additional data, and a message is a type byte and its body. A
// compound message (7) holds up to 255 messages with 16-bit lengths; a
// compressed one (9) holds a msgpack compress{Algo, Buf} whose Buf is LZW
// data (LSB, 8-bit literals) that expands to another message. An inbound
// stream is
//
//	[244 len label] ( [10 len32 sealed] | message )
//
// where the sealed message's additional data is [10 len32] and the label;
// the label header is only on the side that was dialled (responses have
// none). Stream messages are msgpack values with raw bytes after some:
// user (8) is a header {UserMsgLen} and that many bytes, push/pull (6) a
// header {Nodes, UserStateLen, Join}, Nodes node states and UserStateLen
// bytes, ping (0), ack (2) and error (13) one value each, and a compressed
// message expands to one of those.
const (
	mlPing     byte = 0
	mlAck      byte = 2
	mlPushPull byte = 6
	mlCompound byte = 7
	mlUser     byte = 8
	mlCompress byte = 9
	mlEncrypt  byte = 10
	mlHasCRC   byte = 12
	mlErr      byte = 13
	mlHasLabel byte = 244
)

// The caps on inbound gossip. A region has at most tens of peers: its
// push/pull state is tens of KB and its packets are under memberlist's
// 1,400-byte UDP budget, so the caps leave two orders of magnitude.
const (
	// maxPacketBytes is the size of a packet (UDP's own limit).
	maxPacketBytes = 64 << 10
	// maxPacketExpanded bounds what the compressed messages in one packet
	// decompress to, all together.
	maxPacketExpanded = 1 << 20
	// maxStreamBytes bounds one stream message as it arrives, ciphertext
	// included (memberlist's own limit is 20 MB, on encrypted ones only).
	maxStreamBytes = 4 << 20
	// maxStreamExpanded bounds what a compressed stream message
	// decompresses to.
	maxStreamExpanded = 4 << 20
	// maxPushNodes bounds the node states in one push/pull: memberlist
	// allocates room for them from the header (about 100 bytes each).
	maxPushNodes = 4096
	// maxPacketNesting bounds compound and compressed messages inside each
	// other in a packet. memberlist nests one in the other at most once.
	maxPacketNesting = 4
)

// checker checks inbound packets and stream messages against the caps and
// memberlist's framing, for a pool with the given label and key (nil for
// plaintext). Its methods are safe for concurrent use.
type checker struct {
	label string
	key   []byte
}

// checkPacket checks one inbound packet. It never allocates more than the
// packet size plus maxPacketExpanded (and the LZW reader's tables).
func (c checker) checkPacket(buf []byte) error {
	if len(buf) > maxPacketBytes {
		return fmt.Errorf("%w: packet of %d bytes, cap %d", errOversized, len(buf), maxPacketBytes)
	}
	s := &mpScanner{src: &source{buf: buf}}
	if err := c.checkLabel(s); err != nil {
		return err
	}
	body := buf[s.off:]
	if c.key != nil {
		var err error
		if body, err = c.open(body, []byte(c.label)); err != nil {
			return err
		}
	}
	if len(body) >= 5 && body[0] == mlHasCRC {
		body = body[5:] // memberlist checks the CRC itself
	}
	budget := maxPacketExpanded
	return checkCommand(body, &budget, 0)
}

// checkCommand checks a packet's message: compound and compressed messages
// recursively, with one decompression budget for the whole packet. Other
// messages are decoded by memberlist from the packet itself, which bounds
// them.
func checkCommand(buf []byte, budget *int, depth int) error {
	if len(buf) == 0 {
		return nil // memberlist drops it
	}
	if depth > maxPacketNesting {
		return fmt.Errorf("%w: messages nested more than %d deep", errMalformed, maxPacketNesting)
	}
	switch buf[0] {
	case mlCompound:
		buf = buf[1:]
		if len(buf) < 1 || len(buf) < 1+2*int(buf[0]) {
			return fmt.Errorf("%w: truncated compound message", errMalformed)
		}
		n := int(buf[0])
		lengths, parts := buf[1:1+2*n], buf[1+2*n:]
		for i := range n {
			l := int(lengths[2*i])<<8 | int(lengths[2*i+1])
			if l > len(parts) {
				break // memberlist handles the parts before a truncation
			}
			if err := checkCommand(parts[:l], budget, depth+1); err != nil {
				return err
			}
			parts = parts[l:]
		}
	case mlCompress:
		inner, err := expand(&mpScanner{src: &source{buf: buf[1:]}}, budget)
		if err != nil {
			return err
		}
		return checkCommand(inner, budget, depth+1)
	}
	return nil
}

// checkStream reads and checks one stream message from src, from its
// start, and returns its length: what memberlist will read of src. labelled
// says the message starts with memberlist's label header (the first one on
// a stream this side accepted).
func (c checker) checkStream(src *source, labelled bool) (int, error) {
	s := &mpScanner{src: src}
	if labelled {
		if err := c.checkLabel(s); err != nil {
			return 0, err
		}
	}
	t, err := s.byte()
	if err != nil {
		return 0, err
	}
	budget := maxStreamExpanded
	if t != mlEncrypt {
		if c.key != nil {
			return 0, fmt.Errorf("%w: plaintext stream message to an encrypted pool", errMalformed)
		}
		err := checkStreamBody(s, t, &budget, false)
		return s.off, err
	}
	if c.key == nil {
		return 0, fmt.Errorf("%w: encrypted stream message to a plaintext pool", errMalformed)
	}
	size, err := s.take(4)
	if err != nil {
		return 0, err
	}
	aad := append([]byte{mlEncrypt}, size...)
	if n := be32(size); n > maxStreamBytes {
		return 0, fmt.Errorf("%w: encrypted stream message of %d bytes, cap %d", errOversized, n, maxStreamBytes)
	}
	sealed, err := s.take(uint64(be32(size)))
	if err != nil {
		return 0, err
	}
	plain, err := c.open(sealed, append(aad, c.label...))
	if err != nil {
		return 0, err
	}
	if len(plain) == 0 {
		return 0, fmt.Errorf("%w: empty encrypted stream message", errMalformed)
	}
	inner := &mpScanner{src: &source{buf: plain[1:]}}
	err = checkStreamBody(inner, plain[0], &budget, false)
	return s.off, err
}

// checkStreamBody checks the body of a stream message of type t.
// expanded says it came out of a compressed message, which memberlist does
// not decompress again.
func checkStreamBody(s *mpScanner, t byte, budget *int, expanded bool) error {
	switch t {
	case mlCompress:
		if expanded {
			break
		}
		inner, err := expand(s, budget)
		if err != nil {
			return err
		}
		if len(inner) == 0 {
			return fmt.Errorf("%w: compressed stream message expands to nothing", errMalformed)
		}
		return checkStreamBody(&mpScanner{src: &source{buf: inner[1:]}}, inner[0], budget, true)
	case mlUser:
		var n int64
		err := s.fields([]string{"UserMsgLen"}, func(string) (err error) {
			n, err = s.int()
			return err
		})
		if err != nil {
			return err
		}
		return takeLength(s, n, "user message")
	case mlPushPull:
		var nodes, state int64
		err := s.fields([]string{"Nodes", "UserStateLen", "Join"}, func(name string) (err error) {
			switch name {
			case "Nodes":
				nodes, err = s.int()
			case "UserStateLen":
				state, err = s.int()
			default:
				err = s.bool()
			}
			return err
		})
		if err != nil {
			return err
		}
		if nodes < 0 || nodes > maxPushNodes {
			return fmt.Errorf("%w: push/pull of %d nodes, cap %d", errOversized, nodes, maxPushNodes)
		}
		for range nodes {
			if err := s.skip(); err != nil {
				return err
			}
		}
		return takeLength(s, state, "push/pull user state")
	case mlPing, mlAck, mlErr:
		return s.skip()
	}
	return fmt.Errorf("%w: stream message of type %d", errMalformed, t)
}

// takeLength takes the n raw bytes a header announced.
func takeLength(s *mpScanner, n int64, what string) error {
	switch {
	case n < 0:
		return fmt.Errorf("%w: %s of %d bytes", errMalformed, what, n)
	case n > maxStreamBytes:
		return fmt.Errorf("%w: %s of %d bytes, cap %d", errOversized, what, n, maxStreamBytes)
	}
	_, err := s.take(uint64(n))
	return err
}

// checkLabel reads the label header and checks that it is the pool's:
// memberlist drops everything else, since the pool always sets a label.
func (c checker) checkLabel(s *mpScanner) error {
	b, err := s.byte()
	if err != nil {
		return err
	}
	if b != mlHasLabel {
		return fmt.Errorf("%w: no label (the pool's is %q)", errMalformed, c.label)
	}
	n, err := s.byte()
	if err != nil {
		return err
	}
	label, err := s.take(uint64(n))
	if err != nil {
		return err
	}
	if string(label) != c.label {
		return fmt.Errorf("%w: label %q, not the pool's %q", errMalformed, label, c.label)
	}
	return nil
}

// expand reads a compress{Algo, Buf} value and decompresses Buf, taking
// what it expands to from budget: more is errOversized.
func expand(s *mpScanner, budget *int) ([]byte, error) {
	var algo int64
	var data []byte
	err := s.fields([]string{"Algo", "Buf"}, func(name string) (err error) {
		if name == "Algo" {
			algo, err = s.int()
		} else {
			data, err = s.bytes()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if algo != 0 { // lzwAlgo, the only one memberlist knows
		return nil, fmt.Errorf("%w: compression algorithm %d", errMalformed, algo)
	}
	r := lzw.NewReader(bytes.NewReader(data), lzw.LSB, 8)
	defer r.Close()
	out, err := readAtMost(r, *budget+1)
	if len(out) > *budget {
		return nil, fmt.Errorf("%w: %d compressed bytes expand to more than %d", errOversized, len(data), *budget)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: LZW data: %v", errMalformed, err)
	}
	*budget -= len(out)
	return out, nil
}

// readAtMost reads r to its end or to limit bytes, whichever comes first.
// Its buffer doubles as data comes (io.ReadAll grows large buffers by a
// quarter at a time, which allocates five times what it reads).
func readAtMost(r io.Reader, limit int) ([]byte, error) {
	buf := make([]byte, 0, min(limit, 512))
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(make([]byte, 0, min(limit, 2*cap(buf))), buf...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// open decrypts a sealed message as memberlist's keyring does: a version
// byte (0: PKCS7-padded, 1: not), a 12-byte nonce and AES-GCM with aad. It
// works on a copy: memberlist decrypts the message again itself.
func (c checker) open(msg, aad []byte) ([]byte, error) {
	const nonceSize, tagSize = 12, 16
	if len(msg) < 1+nonceSize+tagSize || msg[0] > 1 {
		return nil, fmt.Errorf("%w: not sealed with a known encryption version", errMalformed)
	}
	block, err := aes.NewCipher(c.key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	plain, err := gcm.Open(nil, msg[1:1+nonceSize], msg[1+nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: does not decrypt with the pool's key", errMalformed)
	}
	if msg[0] == 0 {
		// memberlist strips the padding without checking it, and panics
		// on a pad longer than the message.
		if len(plain) == 0 || plain[len(plain)-1] == 0 || int(plain[len(plain)-1]) > min(aes.BlockSize, len(plain)) {
			return nil, fmt.Errorf("%w: bad padding", errMalformed)
		}
		plain = plain[:len(plain)-int(plain[len(plain)-1])]
	}
	return plain, nil
}
