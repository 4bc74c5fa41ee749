package testenv

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// LibvirtSocket is the local libvirtd's read-write socket (qemu:///system).
const LibvirtSocket = "/var/run/libvirt/libvirt-sock"

// ForwardToLibvirt listens on a free loopback port for as long as the test
// runs and forwards each connection to LibvirtSocket; hold, if not nil, is
// called with each accepted connection before the forwarding starts (a test
// can delay or break it there). Only connections from sockets that root owns
// are forwarded: the listener grants what the socket grants, to whom it
// grants it. It returns the listener's host:port.
func ForwardToLibvirt(t testing.TB, hold func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(RemoteHost, "0"))
	if err != nil {
		t.Fatalf("forwarder to libvirtd: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = in.Close() }()
				uid, err := peerUID(in)
				if err != nil || uid != 0 {
					t.Logf("forwarder to libvirtd: refused %s (uid %d, %v)", in.RemoteAddr(), uid, err)
					return
				}
				if hold != nil {
					hold(in)
				}
				out, err := net.DialTimeout("unix", LibvirtSocket, 10*time.Second)
				if err != nil {
					t.Logf("forwarder to libvirtd: %v", err)
					return
				}
				defer func() { _ = out.Close() }()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// peerUID is the owner of the socket at the other end of a loopback TCP
// connection, from /proc/net/tcp: the line whose local address is the
// peer's and whose remote address is ours.
func peerUID(c net.Conn) (int, error) {
	local, remote := procAddr(c.RemoteAddr()), procAddr(c.LocalAddr())
	if local == "" || remote == "" {
		return -1, fmt.Errorf("not a TCP/IPv4 connection")
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return -1, err
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[1] != local || fields[2] != remote {
			continue
		}
		return strconv.Atoi(fields[7])
	}
	if err := sc.Err(); err != nil {
		return -1, err
	}
	return -1, fmt.Errorf("no socket %s -> %s in /proc/net/tcp", local, remote)
}

// procAddr renders a TCP address as /proc/net/tcp does: the IPv4 address
// as a little-endian hex word, a colon, the port in hex.
func procAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	ip := ta.IP.To4()
	if ip == nil {
		return ""
	}
	le := []byte{ip[3], ip[2], ip[1], ip[0]}
	return fmt.Sprintf("%s:%04X", strings.ToUpper(hex.EncodeToString(le)), ta.Port)
}
