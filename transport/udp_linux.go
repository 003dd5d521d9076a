package transport

import (
	"net"

	"golang.org/x/sys/unix"
)

// raiseBuffers asks for socketBuffer bytes of receive and send buffer, as
// quic-go does (SO_RCVBUFFORCE when allowed, the plain option capped by
// net.core.rmem_max otherwise), and returns what the kernel reports. As
// quic-go, it compares the kernel's figure, which on Linux counts the
// bookkeeping overhead too (twice the size asked).
func raiseBuffers(c *net.UDPConn) (recv, send int, ok bool) {
	_ = c.SetReadBuffer(socketBuffer)
	_ = c.SetWriteBuffer(socketBuffer)
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var rerr, serr error
	err = raw.Control(func(fd uintptr) {
		recv, rerr = raise(int(fd), unix.SO_RCVBUF, unix.SO_RCVBUFFORCE)
		send, serr = raise(int(fd), unix.SO_SNDBUF, unix.SO_SNDBUFFORCE)
	})
	return recv, send, err == nil && rerr == nil && serr == nil
}

func raise(fd, opt, force int) (int, error) {
	size, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
	if err != nil || size >= socketBuffer {
		return size, err
	}
	// Needs CAP_NET_ADMIN; without it the size stays as it is.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, socketBuffer)
	return unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
}
