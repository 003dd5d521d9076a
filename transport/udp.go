package transport

import (
	"log/slog"
	"net"
	"os"
	"sync"
)

// socketBuffer is the UDP receive and send buffer size quic-go asks for
// (its desiredBufferSize), in bytes.
const socketBuffer = 7 << 20

// quicBufferWarningEnv is the variable quic-go reads before it prints its
// own buffer warning to the standard logger, once per process.
const quicBufferWarningEnv = "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING"

var bufferWarning sync.Once

// listenUDP opens the link's socket and raises its buffers. If the kernel
// caps them below what QUIC wants, one log line per process says what was
// reached and which sysctl raises the cap; quic-go's own warning (printed
// with the standard logger, bypassing slog) is switched off.
func listenUDP(bind string, log *slog.Logger) (*net.UDPConn, error) {
	if _, set := os.LookupEnv(quicBufferWarningEnv); !set {
		os.Setenv(quicBufferWarningEnv, "true")
	}
	addr, err := net.ResolveUDPAddr("udp", bind)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, err
	}
	recv, send, ok := raiseBuffers(conn)
	if ok && (recv < socketBuffer || send < socketBuffer) {
		bufferWarning.Do(func() {
			log.Warn("UDP socket buffers are smaller than QUIC wants; links between regions may drop packets under load",
				"recv_buffer", recv, "send_buffer", send, "want", socketBuffer,
				"fix", "sysctl -w net.core.rmem_max=7340032 net.core.wmem_max=7340032")
		})
	}
	return conn, nil
}
