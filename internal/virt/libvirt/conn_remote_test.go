package libvirt

// The remote transports, for real: scripts/testenv puts an sshd and libvirtd's
// own TCP and TLS listeners in front of the local libvirtd, all on 127.0.0.1,
// so these tests reach it exactly as the provider reaches a remote host.
// libvirtd's admin interface (virt-admin) then shows which transport each
// connection arrived by.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

// remoteFailFast bounds how long a refused remote connection may take to
// fail: refusals are immediate on loopback, so anything near the connect
// timeout means the client waited for nothing.
const remoteFailFast = 5 * time.Second

type remoteTransport struct {
	name string
	uri  string
	// ours recognises, in virt-admin client-info fields, the daemon's side
	// of a connection made this way.
	ours func(info map[string]string) bool
}

func remoteTransports(t *testing.T) []remoteTransport {
	t.Helper()
	// Over ssh, libvirtd sees a local client: the sshd process that
	// forwards the channel to its socket.
	viaSSHD := func(info map[string]string) bool {
		if info["transport"] != "unix" {
			return false
		}
		comm, err := os.ReadFile(filepath.Join("/proc", info["unix_process_id"], "comm"))
		return err == nil && strings.TrimSpace(string(comm)) == "sshd"
	}
	fromLoopback := func(transport string) func(map[string]string) bool {
		return func(info map[string]string) bool {
			return info["transport"] == transport && strings.HasPrefix(info["sock_addr"], testenv.RemoteHost+":")
		}
	}
	return []remoteTransport{
		{"ssh", testenv.SSHURI(t), viaSSHD},
		{"libssh", testenv.LibSSHURI(t), viaSSHD},
		// qemu+tcp reaches libvirtd through the test's forwarder (libvirtd
		// keeps no unauthenticated TCP listener): a local client, the test
		// process itself.
		{"tcp", testenv.TCPURI(t), func(info map[string]string) bool {
			return info["transport"] == "unix" && info["unix_process_id"] == strconv.Itoa(os.Getpid())
		}},
		{"tls", testenv.TLSURI(t), func(info map[string]string) bool {
			// The daemon saw the test client certificate.
			return fromLoopback("tls")(info) && strings.Contains(info["tls_x509_dname"], "CN=virt-testenv test client")
		}},
	}
}

// daemonClients returns the ids of libvirtd's clients (virt-admin).
func daemonClients(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("virt-admin", "srv-clients-list", "libvirtd").CombinedOutput()
	if err != nil {
		t.Fatalf("virt-admin srv-clients-list: %v\n%s", err, out)
	}
	ids := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Trim(f[0], "0123456789") == "" {
			ids[f[0]] = true // not the header, rule or blank
		}
	}
	return ids
}

// daemonClientInfo is what virt-admin client-info says of one client, or
// nil when it is gone.
func daemonClientInfo(id string) map[string]string {
	out, err := exec.Command("virt-admin", "client-info", "libvirtd", id).CombinedOutput()
	if err != nil {
		return nil
	}
	info := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			info[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return info
}

// newDaemonClient returns the id and description of the one client that
// libvirtd gained since before and that tr recognises as its own. (Other
// tests connect meanwhile, but not through these transports.)
func newDaemonClient(t *testing.T, tr remoteTransport, before map[string]bool) (string, map[string]string) {
	t.Helper()
	var ids []string
	var infos []map[string]string
	for id := range daemonClients(t) {
		if before[id] {
			continue
		}
		if info := daemonClientInfo(id); info != nil && tr.ours(info) {
			ids = append(ids, id)
			infos = append(infos, info)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("libvirtd's new clients that came by %s: %v, want exactly one", tr.name, infos)
	}
	return ids[0], infos[0]
}

// The same daemon answers through every transport, and says (through its
// admin interface) that the connection arrived by that transport.
func TestRemoteConnect(t *testing.T) {
	testenv.Integration(t)
	ctx := context.Background()
	local := newTestClient(t)
	want, err := local.HostInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range remoteTransports(t) {
		t.Run(tr.name, func(t *testing.T) {
			before := daemonClients(t)
			start := time.Now()
			c, err := New(ctx, Options{URI: tr.uri})
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer func() { _ = c.Close() }()
			t.Logf("%s: connected in %s", tr.uri, time.Since(start).Round(time.Millisecond))
			id, info := newDaemonClient(t, tr, before)
			t.Logf("libvirtd's side: client %s %v", id, info)

			got, err := c.HostInfo(ctx)
			if err != nil {
				t.Fatalf("HostInfo: %v", err)
			}
			if got.Hostname != hostname {
				t.Errorf("hostname = %q, local hostname %q", got.Hostname, hostname)
			}
			if got.LibvirtVersion != want.LibvirtVersion || got.HypervisorVersion != want.HypervisorVersion ||
				got.CPUs != want.CPUs || got.MemoryBytes != want.MemoryBytes || !slices.Equal(got.DomainTypes, want.DomainTypes) {
				t.Errorf("host info %+v differs from the local socket's %+v", *got, *want)
			}
		})
	}
}

// A connection that drops, whether the client hangs up or the daemon throws
// it out, is dialled again by the next call, through the same transport.
func TestRemoteReconnectAfterDrop(t *testing.T) {
	testenv.Integration(t)
	ctx := context.Background()
	live := func(c *Client) *golibvirt.Libvirt {
		t.Helper()
		var got *golibvirt.Libvirt
		if err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
			got = lv
			_, err := lv.ConnectGetHostname()
			return err
		}); err != nil {
			t.Fatalf("call: %v", err)
		}
		return got
	}
	for _, tr := range remoteTransports(t) {
		t.Run(tr.name, func(t *testing.T) {
			before := daemonClients(t)
			c, err := New(ctx, Options{URI: tr.uri})
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer func() { _ = c.Close() }()
			id, _ := newDaemonClient(t, tr, before)

			// The daemon's side goes away.
			first := live(c)
			before = daemonClients(t)
			if out, err := exec.Command("virt-admin", "client-disconnect", "libvirtd", id).CombinedOutput(); err != nil {
				t.Fatalf("virt-admin client-disconnect %s: %v\n%s", id, err, out)
			}
			select {
			case <-first.Disconnected():
			case <-time.After(remoteFailFast):
				t.Fatalf("client %s was disconnected by libvirtd, but the connection did not notice within %s", id, remoteFailFast)
			}
			second := live(c)
			if second == first {
				t.Fatal("client kept the connection libvirtd dropped")
			}
			newDaemonClient(t, tr, before) // the new connection came the same way

			// Our side hangs up.
			if err := second.Disconnect(); err != nil {
				t.Fatalf("drop: %v", err)
			}
			if third := live(c); third == second {
				t.Fatal("client kept the dropped connection")
			}
		})
	}
}

// remoteMustFail connects to uri, which must be refused quickly with an
// error naming the URI and containing every one of wants.
func remoteMustFail(t *testing.T, uri string, wants ...string) {
	t.Helper()
	start := time.Now()
	c, err := New(context.Background(), Options{URI: uri})
	elapsed := time.Since(start)
	if err == nil {
		_ = c.Close()
		t.Fatalf("connect to %s succeeded; it must be refused", uri)
	}
	t.Logf("refused in %s: %v", elapsed.Round(time.Millisecond), err)
	for _, want := range append([]string{uri}, wants...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q", want)
		}
	}
	if elapsed > remoteFailFast {
		t.Errorf("failing took %s", elapsed)
	}
}

// withHost is uri with its host:port replaced.
func withHost(t *testing.T, uri, host string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = host
	return u.String()
}

// An ssh server whose host key is not known, or not the one known, is
// refused: never trusted on first use, never silently.
func TestRemoteSSHHostKeyRefused(t *testing.T) {
	testenv.Integration(t)
	dir := t.TempDir()
	key := testenv.SSHKey(t)
	sshd := net.JoinHostPort(testenv.RemoteHost, strconv.Itoa(testenv.SSHPort))

	t.Run("libssh unknown key", func(t *testing.T) {
		empty := filepath.Join(dir, "empty_known_hosts")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		uri := "qemu+libssh://root@" + sshd + "/system?keyfile=" + key + "&known_hosts=" + empty
		remoteMustFail(t, uri, "host key of "+sshd+" is not in "+empty)
		if b, err := os.ReadFile(empty); err != nil || len(b) != 0 {
			t.Errorf("known_hosts after a refused connection: %q, %v; it must stay empty", b, err)
		}
	})

	t.Run("libssh changed key", func(t *testing.T) {
		// The test client's own public key stands in for a host key that
		// someone else presents: any other key must not do.
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(pub))
		wrong := filepath.Join(dir, "wrong_known_hosts")
		line := "[" + testenv.RemoteHost + "]:" + strconv.Itoa(testenv.SSHPort) + " " + f[0] + " " + f[1] + "\n"
		if err := os.WriteFile(wrong, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		uri := "qemu+libssh://root@" + sshd + "/system?keyfile=" + key + "&known_hosts=" + wrong
		remoteMustFail(t, uri, "host key of "+sshd+" does not match the one in "+wrong)
	})

	t.Run("ssh unknown host name", func(t *testing.T) {
		// qemu+ssh reads ~/.ssh/known_hosts, which knows the test sshd as
		// [127.0.0.1]:2222 only: by the name localhost it is unknown.
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		byName := net.JoinHostPort("localhost", strconv.Itoa(testenv.SSHPort))
		remoteMustFail(t, withHost(t, testenv.SSHURI(t), byName),
			"host key of "+byName+" is not in "+filepath.Join(home, ".ssh", "known_hosts"))
	})
}

// testCert makes a P-256 key and a certificate for it, signed by parent
// (self-signed when parent is nil), and returns both as PEM.
func testCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool, usage x509.ExtKeyUsage) (cert *x509.Certificate, key *ecdsa.PrivateKey, certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"virt-testenv rogue"}, CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  ca,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		tmpl.IPAddresses = []net.IP{net.ParseIP(testenv.RemoteHost)}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key,
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// writePKI makes a pkipath directory from PEM contents.
func writePKI(t *testing.T, ca, cert, key []byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range map[string][]byte{"cacert.pem": ca, "clientcert.pem": cert, "clientkey.pem": key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Each side of TLS refuses a certificate that a CA it does not trust signed.
func TestRemoteTLSForeignCARefused(t *testing.T) {
	testenv.Integration(t)
	pki := testenv.PKIDir(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(pki, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rogueCA, rogueKey, roguePEM, _ := testCert(t, "virt-testenv rogue CA", nil, nil, true, 0)
	tlsURI := func(dir string) string {
		return "qemu+tls://" + net.JoinHostPort(testenv.RemoteHost, strconv.Itoa(testenv.LibvirtTLSPort)) + "/system?pkipath=" + dir
	}

	t.Run("client trusts another CA", func(t *testing.T) {
		// Our genuine client certificate, but trusting only the rogue CA:
		// the server's certificate must not pass.
		dir := writePKI(t, roguePEM, read("clientcert.pem"), read("clientkey.pem"))
		remoteMustFail(t, tlsURI(dir), "certificate signed by unknown authority", "not signed by a CA in "+filepath.Join(dir, "cacert.pem"))
	})

	t.Run("server does not trust the client", func(t *testing.T) {
		// Trusting the right CA, but presenting a certificate of the rogue
		// one: libvirtd must turn it away.
		_, _, certPEM, keyPEM := testCert(t, "virt-testenv rogue client", rogueCA, rogueKey, false, x509.ExtKeyUsageClientAuth)
		dir := writePKI(t, read("cacert.pem"), certPEM, keyPEM)
		remoteMustFail(t, tlsURI(dir), "refused our client certificate "+filepath.Join(dir, "clientcert.pem"))
	})
}

// Nothing listening: refused at once, and said so.
func TestRemoteTCPConnectionRefused(t *testing.T) {
	testenv.Integration(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(testenv.RemoteHost, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	remoteMustFail(t, "qemu+tcp://"+addr+"/system", "connection refused")
}

// An sshd that lets us in but cannot reach libvirtd's socket (here: a socket
// that does not exist) fails at once, and says what to check.
func TestRemoteSSHNoLibvirtSocket(t *testing.T) {
	testenv.Integration(t)
	remoteMustFail(t, testenv.SSHURI(t)+"&socket=/nonexistent/libvirt-sock",
		"did not connect us to libvirtd's socket", "AllowStreamLocalForwarding")
}

// silentPeer listens on loopback, accepts, and never says a word: an ssh or
// TLS handshake with it can only wait.
func silentPeer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(testenv.RemoteHost, "0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	// Closing what was accepted ends the abandoned handshakes too. (Close
	// errors of a fake peer say nothing about the test.)
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// go-libvirt's ssh and TLS dialers take no deadline for their handshakes;
// ConnectTimeout still bounds the wait.
func TestRemoteSilentPeerTimesOut(t *testing.T) {
	testenv.Integration(t)
	for _, tc := range []struct{ name, uri string }{
		{"ssh", withHost(t, testenv.SSHURI(t), silentPeer(t))},
		{"tls", withHost(t, testenv.TLSURI(t), silentPeer(t))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := New(context.Background(), Options{URI: tc.uri, ConnectTimeout: 500 * time.Millisecond})
			if err == nil {
				t.Fatal("connect to a silent peer succeeded")
			}
			if !strings.Contains(err.Error(), "no answer within 500ms") || !strings.Contains(err.Error(), tc.uri) {
				t.Fatalf("unhelpful error: %v", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("giving up took %s", d)
			}
		})
	}
}
