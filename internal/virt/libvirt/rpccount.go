package libvirt

import (
	"encoding/binary"
	"net"
	"sync"
)

// libvirt's RPC framing, as far as counting calls needs it. Every packet,
// in both directions, starts with a 4-byte big-endian length (of the whole
// packet, this word included) and a header of six 4-byte words: program,
// version, procedure, type, serial, status. The rest is the payload.
const (
	rpcLenSize    = 4
	rpcHeaderSize = 6 * 4
	rpcPrefixSize = rpcLenSize + rpcHeaderSize
	// Offsets in the prefix (length word and header).
	rpcTypeOffset   = rpcLenSize + 3*4
	rpcSerialOffset = rpcLenSize + 4*4
)

// Packet types (virNetMessageType).
const (
	rpcCall         = 0
	rpcReply        = 1
	rpcMessage      = 2 // an event, unasked for
	rpcStream       = 3
	rpcCallWithFDs  = 4
	rpcReplyWithFDs = 5
	rpcStreamHole   = 6
)

// rpcFramer follows the packet boundaries of one direction of a connection
// through bytes that arrive in pieces of any size, and reports the type
// and serial of each packet once its header is complete.
type rpcFramer struct {
	prefix [rpcPrefixSize]byte
	have   int    // bytes of the current packet's prefix seen so far
	skip   uint32 // bytes of the current packet's payload still to pass
	// broken is set by a length too short to hold a header: the stream
	// cannot be followed any further (a peer that sent it is not speaking
	// libvirt's protocol, and libvirtd would hang up on it).
	broken bool
}

// feed consumes p and calls packet for every header it completes.
func (f *rpcFramer) feed(p []byte, packet func(typ, serial uint32)) {
	for len(p) > 0 && !f.broken {
		if f.skip > 0 {
			n := uint32(len(p))
			if n > f.skip {
				n = f.skip
			}
			p, f.skip = p[n:], f.skip-n
			continue
		}
		n := copy(f.prefix[f.have:], p)
		p, f.have = p[n:], f.have+n
		if f.have < rpcPrefixSize {
			return
		}
		length := binary.BigEndian.Uint32(f.prefix[:rpcLenSize])
		if length < rpcPrefixSize {
			f.broken = true
			return
		}
		f.have, f.skip = 0, length-rpcPrefixSize
		packet(binary.BigEndian.Uint32(f.prefix[rpcTypeOffset:]), binary.BigEndian.Uint32(f.prefix[rpcSerialOffset:]))
	}
}

// countingConn is a connection to libvirtd that knows how many of the
// calls it carried are still unanswered: libvirtd serves at most
// max_client_requests calls of one connection at a time and stops reading
// the connection while it has that many, so this count says whether one
// more call would be served at once or wait behind the others. It counts
// CALL packets going out and the REPLY packets with their serials coming
// back; events (MESSAGE) and stream data are no calls.
//
// It counts at the socket rather than around go-libvirt's methods so that
// every call is seen, whoever makes it on the connection (the event hub's
// registrations, go-libvirt's own ConnectClose): what libvirtd counts.
type countingConn struct {
	net.Conn

	mu       sync.Mutex
	out, in  rpcFramer
	inFlight map[uint32]struct{} // serials of calls not answered yet
}

func newCountingConn(c net.Conn) *countingConn {
	return &countingConn{Conn: c, inFlight: map[uint32]struct{}{}}
}

// Write counts the bytes before they go: once they are out, the reply may
// come (and be read on another goroutine) before this one counts, and a
// reply counted before its call would leave the call in flight for ever.
// A write that fails leaves the count wrong, but the connection is done
// for then. go-libvirt writes one packet at a time, flushing a buffer, so
// a packet may span writes.
func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.feed(p, c.sent)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.in.feed(p[:n], c.received)
		c.mu.Unlock()
	}
	return n, err
}

func (c *countingConn) sent(typ, serial uint32) {
	if typ == rpcCall || typ == rpcCallWithFDs {
		c.inFlight[serial] = struct{}{}
	}
}

func (c *countingConn) received(typ, serial uint32) {
	if typ == rpcReply || typ == rpcReplyWithFDs {
		delete(c.inFlight, serial)
	}
}

// calls is the number of calls sent and not yet answered; 0 once the
// framing was lost (the pool then goes by its own count of callers).
func (c *countingConn) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out.broken || c.in.broken {
		return 0
	}
	return len(c.inFlight)
}
