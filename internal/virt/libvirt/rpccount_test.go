package libvirt

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// rpcPacket builds a packet as libvirt frames it: length, the six header
// words, then the payload.
func rpcPacket(typ, serial uint32, payload int) []byte {
	p := make([]byte, rpcPrefixSize+payload)
	binary.BigEndian.PutUint32(p[0:], uint32(len(p)))
	binary.BigEndian.PutUint32(p[4:], 0x20008086) // program: remote
	binary.BigEndian.PutUint32(p[8:], 1)          // version
	binary.BigEndian.PutUint32(p[12:], 7)         // procedure
	binary.BigEndian.PutUint32(p[16:], typ)
	binary.BigEndian.PutUint32(p[20:], serial)
	binary.BigEndian.PutUint32(p[24:], 0) // status
	for i := rpcPrefixSize; i < len(p); i++ {
		// A payload that looks like headers: the framer must not read
		// packets into it.
		p[i] = byte(i % 5)
	}
	return p
}

type seenPacket struct{ typ, serial uint32 }

// The framer finds every packet whichever way the bytes are cut: one at
// a time, across the length word, the header and the payload, and with
// several packets in one piece.
func TestRPCFramerSplits(t *testing.T) {
	var stream []byte
	var want []seenPacket
	for i, p := range []struct {
		typ     uint32
		payload int
	}{
		{rpcCall, 0}, {rpcReply, 3}, {rpcMessage, 40}, {rpcStream, 9000},
		{rpcCallWithFDs, 1}, {rpcReplyWithFDs, 4}, {rpcStreamHole, 24}, {rpcCall, 28},
	} {
		serial := uint32(100 + i)
		stream = append(stream, rpcPacket(p.typ, serial, p.payload)...)
		want = append(want, seenPacket{p.typ, serial})
	}
	for _, size := range []int{1, 2, 3, 4, 5, 7, 27, 28, 29, 31, 64, 4095, 4096, len(stream)} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var f rpcFramer
			var got []seenPacket
			for rest := stream; len(rest) > 0; {
				n := min(size, len(rest))
				f.feed(rest[:n], func(typ, serial uint32) { got = append(got, seenPacket{typ, serial}) })
				rest = rest[n:]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pieces of %d bytes: packets %v, want %v", size, got, want)
			}
			if f.have != 0 || f.skip != 0 || f.broken {
				t.Fatalf("framer not at a packet boundary after the stream: %+v", f)
			}
		})
	}
}

// A length too short for a header cannot be followed: the framer stops
// rather than read packets into noise.
func TestRPCFramerShortLength(t *testing.T) {
	var f rpcFramer
	bad := rpcPacket(rpcCall, 1, 0)
	binary.BigEndian.PutUint32(bad, rpcPrefixSize-1)
	calls := 0
	f.feed(append(bad, rpcPacket(rpcCall, 2, 0)...), func(uint32, uint32) { calls++ })
	if !f.broken || calls != 0 {
		t.Fatalf("after a short length: broken %v, %d packets reported; want broken, none", f.broken, calls)
	}
}

// countingConn counts the calls that went out and have no reply yet, over
// a real connection (net.Pipe) written and read in awkward pieces as
// go-libvirt's buffered writer and reader may cut them.
func TestCountingConn(t *testing.T) {
	client, server := net.Pipe()
	t.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
	})
	cc := newCountingConn(client)

	// The server's side reads whatever comes (net.Pipe's writes wait for
	// a reader), and counts it.
	var received atomic.Int64
	go func() {
		buf := make([]byte, 1000)
		for {
			n, err := server.Read(buf)
			received.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	writeCut := func(w io.Writer, b []byte, cut int) {
		t.Helper()
		for len(b) > 0 {
			n := min(cut, len(b))
			if _, err := w.Write(b[:n]); err != nil {
				t.Fatal(err)
			}
			b = b[n:]
		}
	}
	var sentBytes int
	send := func(cut int, packets ...[]byte) {
		t.Helper()
		for _, p := range packets {
			writeCut(cc, p, cut)
			sentBytes += len(p)
		}
	}
	// The client side reads in pieces of 5 bytes, until it has read n.
	readBytes := func(n int) {
		t.Helper()
		buf := make([]byte, 5)
		for n > 0 {
			k, err := cc.Read(buf[:min(len(buf), n)])
			if err != nil {
				t.Fatal(err)
			}
			n -= k
		}
	}
	reply := func(cut int, packets ...[]byte) {
		t.Helper()
		total := 0
		for _, p := range packets {
			total += len(p)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, p := range packets {
				for b := p; len(b) > 0; {
					n := min(cut, len(b))
					if _, err := server.Write(b[:n]); err != nil {
						return
					}
					b = b[n:]
				}
			}
		}()
		readBytes(total)
		<-done
	}
	want := func(n int) {
		t.Helper()
		if got := cc.calls(); got != n {
			t.Fatalf("calls in flight = %d, want %d", got, n)
		}
	}

	want(0)
	send(3, rpcPacket(rpcCall, 1, 10), rpcPacket(rpcCall, 2, 0))
	send(29, rpcPacket(rpcCall, 3, 100), rpcPacket(rpcCallWithFDs, 4, 7))
	// Upload data and an end of stream from the client are no calls.
	send(1000, rpcPacket(rpcStream, 3, 2000), rpcPacket(rpcStream, 3, 0))
	send(4096, rpcPacket(rpcCall, 5, 5000))
	want(5)

	// An event, stream data, a reply to a serial never sent: nothing
	// changes. Replies end their calls, whatever the cut.
	reply(7, rpcPacket(rpcMessage, 0, 60), rpcPacket(rpcStream, 3, 33), rpcPacket(rpcReply, 99, 8))
	want(5)
	reply(13, rpcPacket(rpcReply, 2, 12), rpcPacket(rpcReplyWithFDs, 4, 0))
	want(3)
	reply(1, rpcPacket(rpcReply, 1, 0))
	want(2)
	// A second reply to the same call does not count twice.
	reply(28, rpcPacket(rpcReply, 1, 0))
	want(2)
	send(30, rpcPacket(rpcCall, 6, 3))
	want(3)
	reply(1000, rpcPacket(rpcReply, 3, 4000), rpcPacket(rpcReply, 5, 0), rpcPacket(rpcReply, 6, 1))
	want(0)

	// Everything written reached the server: the counting took nothing
	// away and added nothing.
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() != int64(sentBytes) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := received.Load(); got != int64(sentBytes) {
		t.Fatalf("the server read %d bytes, %d were written", got, sentBytes)
	}
}
