// Package libvirt is the machine side of internal/virt: domains, storage pools
// and volumes, and networks, spoken to libvirtd over its RPC protocol with
// github.com/digitalocean/go-libvirt (no libvirt C library needed, so the
// provider can drive a remote host from any machine).
package libvirt

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"github.com/hashicorp/go-hclog"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// DefaultURI is used when neither the caller nor LIBVIRT_DEFAULT_URI names one.
const DefaultURI = "qemu:///system"

// DefaultConnectTimeout bounds dialling and the protocol handshake, so that a
// wrong URI fails in seconds instead of hanging a plan.
const DefaultConnectTimeout = 10 * time.Second

// ResolveURI applies libvirt's own precedence: the given URI, then
// LIBVIRT_DEFAULT_URI, then qemu:///system.
func ResolveURI(uri string) string {
	if uri != "" {
		return uri
	}
	if env := os.Getenv("LIBVIRT_DEFAULT_URI"); env != "" {
		return env
	}
	return DefaultURI
}

// ParseURI checks that a URI is one this client can dial, and says why not in
// words a user can act on. It refuses, as an UnverifiedHostError, the
// parameters that would connect without checking the host's identity
// (no_verify other than 0, known_hosts_verify=auto or ignore).
func ParseURI(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		// url.Error repeats the whole URI, password included: keep only
		// the reason.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("libvirt URI is malformed: %w", err)
	}
	// Messages show the URI with any password masked.
	uri = u.Redacted()
	if u.Scheme == "" {
		return nil, fmt.Errorf("libvirt URI %q has no driver: expected e.g. qemu:///system or qemu+ssh://user@host/system", uri)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	switch driver {
	case "qemu", "test", "lxc", "xen", "ch", "bhyve", "vz":
	default:
		return nil, fmt.Errorf("libvirt URI %q: unknown driver %q", uri, driver)
	}
	switch transport {
	case "", "unix", "tcp", "tls", "ssh", "libssh", "libssh2":
	case "ext":
		return nil, fmt.Errorf("libvirt URI %q: transport %q is not supported; use ssh, tcp, tls or a local socket", uri, transport)
	default:
		return nil, fmt.Errorf("libvirt URI %q: unknown transport %q (expected unix, ssh, tcp or tls)", uri, transport)
	}
	if transport != "" && transport != "unix" && u.Host == "" {
		return nil, fmt.Errorf("libvirt URI %q: transport %q needs a host", uri, transport)
	}
	if driver == "qemu" && u.Path != "/system" && u.Path != "/session" {
		return nil, fmt.Errorf("libvirt URI %q: the qemu driver's path is /system or /session", uri)
	}
	// Every URI passes here before it is dialled (New calls ParseURI), so
	// this is the last guard whatever front end the URI came through.
	if err := checkHostVerification(u); err != nil {
		return nil, fmt.Errorf("libvirt URI %q: %w", uri, err)
	}
	return u, nil
}

// Options configures a Client.
type Options struct {
	// URI of the libvirt daemon; see ResolveURI.
	URI string
	// ConnectTimeout bounds each (re)connection; DefaultConnectTimeout if 0.
	ConnectTimeout time.Duration
	// Logger receives debug logs of every libvirt operation.
	Logger hclog.Logger
}

// Client is one connection to one libvirt daemon, shared by every caller and
// safe for concurrent use (go-libvirt multiplexes RPCs over one socket). When
// the daemon goes away, the next call dials again.
type Client struct {
	uri     *url.URL
	timeout time.Duration
	log     hclog.Logger

	mu sync.Mutex
	lv *golibvirt.Libvirt

	storageLocks poolLocks // see storage.go
}

// New connects to the daemon at opts.URI. It fails, within ConnectTimeout,
// with an error that names the URI and the reason.
func New(ctx context.Context, opts Options) (*Client, error) {
	raw := ResolveURI(opts.URI)
	u, err := ParseURI(raw)
	if err != nil {
		return nil, err
	}
	c := &Client{uri: u, timeout: opts.ConnectTimeout, log: opts.Logger}
	if c.timeout <= 0 {
		c.timeout = DefaultConnectTimeout
	}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	c.log = c.log.Named("libvirt").With("uri", u.Redacted())
	if _, err := c.conn(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// URI is the URI the client dials.
// A password in the URI (qemu+ssh://user:secret@host/...) is shown as xxxxx.
func (c *Client) URI() string { return c.uri.Redacted() }

// Close hangs up. The client must not be used afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lv == nil {
		return nil
	}
	err := c.lv.Disconnect()
	c.lv = nil
	if err != nil && !isConnectionLost(err) {
		return fmt.Errorf("disconnect from %s: %w", c.URI(), err)
	}
	return nil
}

// conn returns the live connection, dialling a new one when there is none or
// the old one dropped. Only one caller dials at a time; the others wait and
// share the result.
func (c *Client) conn(ctx context.Context) (*golibvirt.Libvirt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lv != nil && c.lv.IsConnected() {
		return c.lv, nil
	}
	if c.lv != nil {
		c.log.Info("connection to libvirt lost; reconnecting")
		c.lv = nil
	}
	lv, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.lv = lv
	return lv, nil
}

// dial connects and shakes hands under a deadline. go-libvirt's handshake
// takes no context, so it runs in a goroutine and is abandoned (and its
// socket closed) if the deadline passes first: a peer that accepts TCP but
// never speaks libvirt must not hang the caller.
func (c *Client) dial(ctx context.Context) (*golibvirt.Libvirt, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()

	type result struct {
		lv  *golibvirt.Libvirt
		err error
	}
	done := make(chan result, 1)
	go func() {
		lv, err := c.connectOnce()
		done <- result{lv, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, &DialError{URI: c.URI(), Reason: explainDialError(c.uri, r.err), Err: r.err}
		}
		c.log.Debug("connected", "elapsed", time.Since(start))
		return r.lv, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.lv != nil {
				_ = r.lv.Disconnect()
			}
		}()
		return nil, &DialError{URI: c.URI(), Reason: fmt.Sprintf("no answer within %s (is libvirtd running and reachable?)", c.timeout), Err: ctx.Err()}
	}
}

func (c *Client) connectOnce() (*golibvirt.Libvirt, error) {
	u := c.uri
	_, transport, _ := strings.Cut(u.Scheme, "+")
	switch transport {
	case "", "unix":
		if u.Host != "" {
			break // driver://host/ means TLS, as in libvirt; go-libvirt knows.
		}
		// Dial the local socket ourselves so the dial honours our timeout.
		opts := []dialers.LocalOption{dialers.WithLocalTimeout(c.timeout)}
		if s := u.Query().Get("socket"); s != "" {
			opts = append(opts, dialers.WithSocket(s))
		}
		lv := golibvirt.NewWithDialer(dialers.NewLocal(opts...))
		if err := lv.ConnectToURI(golibvirt.RemoteURI(u)); err != nil {
			return nil, err
		}
		return lv, nil
	case "tcp":
		opts := []dialers.RemoteOption{dialers.WithRemoteTimeout(c.timeout)}
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UsePort(p))
		}
		lv := golibvirt.NewWithDialer(dialers.NewRemote(u.Hostname(), opts...))
		if err := lv.ConnectToURI(golibvirt.RemoteURI(u)); err != nil {
			return nil, err
		}
		return lv, nil
	}
	return golibvirt.ConnectToURI(u)
}

// DialError is a failed connection: the URI (password redacted), a reason
// a user can act on, and the cause for errors.Is/As.
type DialError struct {
	URI    string
	Reason string
	Err    error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("connect to libvirt at %s: %s", e.URI, e.Reason)
}

func (e *DialError) Unwrap() error { return e.Err }

// explainDialError turns socket-level failures into a reason a user can act on.
func explainDialError(u *url.URL, err error) string {
	_, transport, _ := strings.Cut(u.Scheme, "+")
	overSSH := transport == "ssh" || transport == "libssh" || transport == "libssh2"
	overTLS := transport == "tls" || (transport == "" && u.Host != "") // driver://host/ is TLS
	msg := err.Error()
	switch {
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT):
		return fmt.Sprintf("%v (the libvirt socket does not exist: is libvirtd running?)", err)
	case errors.Is(err, syscall.ECONNREFUSED) && overSSH:
		return fmt.Sprintf("%v (connection refused: is an ssh server listening on %s?)", err, sshAddr(u))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%v (connection refused: is libvirtd running and listening?)", err)
	case errors.Is(err, syscall.EACCES):
		return fmt.Sprintf("%v (permission denied: run as root or join the libvirt group)", err)
	// golang.org/x/crypto/ssh/knownhosts's KeyError, by its text: this
	// package does not import x/crypto itself.
	case overSSH && strings.Contains(msg, "knownhosts: key is unknown"):
		return fmt.Sprintf("%v (the ssh host key of %s is not in %s: check the key's fingerprint, then add it, e.g. with ssh-keyscan)",
			err, sshAddr(u), knownHostsFile(u, transport))
	case overSSH && strings.Contains(msg, "knownhosts: key mismatch"):
		return fmt.Sprintf("%v (the ssh host key of %s does not match the one in %s: the host was reinstalled, or someone is intercepting the connection)",
			err, sshAddr(u), knownHostsFile(u, transport))
	case overSSH && strings.Contains(msg, "ssh: rejected"):
		// go-libvirt runs no remote command (no nc, no virt-ssh-helper): it
		// asks sshd to connect a channel to the socket itself.
		return fmt.Sprintf("%v (the ssh server did not connect us to libvirtd's socket: is libvirtd running on %s, and does its sshd allow forwarding to Unix sockets? That needs AllowStreamLocalForwarding, and AllowTcpForwarding not set to no)",
			err, u.Hostname())
	case overTLS && (errors.Is(err, io.EOF) || strings.Contains(msg, "remote error: tls")):
		return fmt.Sprintf("%v (libvirtd ended the TLS connection: it probably refused our client certificate %s; is that signed by the CA libvirtd trusts, and allowed by its tls_allowed_dn_list?)",
			err, pkiFile(u, "clientcert.pem", "/etc/pki/libvirt"))
	}
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		return fmt.Sprintf("%v (the server's certificate is not signed by a CA in %s)", err, pkiFile(u, "cacert.pem", "/etc/pki/CA"))
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("%v (host name not found)", err)
	}
	var lvErr golibvirt.Error
	if errors.As(err, &lvErr) {
		return fmt.Sprintf("libvirt refused: %s", lvErr.Message)
	}
	return err.Error()
}

// sshAddr is the host:port an ssh URI dials.
func sshAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "22")
}

// knownHostsFile names the file go-libvirt checks host keys against: for
// ssh, ~/.ssh/known_hosts of the user (it refuses a known_hosts parameter);
// for libssh, the known_hosts parameter or $XDG_CONFIG_HOME/libvirt/known_hosts.
func knownHostsFile(u *url.URL, transport string) string {
	if transport == "ssh" {
		if usr, err := user.Current(); err == nil {
			return filepath.Join(usr.HomeDir, ".ssh", "known_hosts")
		}
		return "~/.ssh/known_hosts"
	}
	if f := u.Query().Get("known_hosts"); f != "" {
		return f
	}
	if dir, err := os.UserConfigDir(); err == nil {
		return filepath.Join(dir, "libvirt", "known_hosts")
	}
	return "the libvirt known_hosts file"
}

// pkiFile names where go-libvirt's TLS dialer reads a certificate file:
// the URI's pkipath, else ~/.pki/libvirt (not for root), then sysDir.
func pkiFile(u *url.URL, name, sysDir string) string {
	if dir := u.Query().Get("pkipath"); dir != "" {
		return filepath.Join(dir, name)
	}
	if os.Geteuid() != 0 {
		return fmt.Sprintf("~/.pki/libvirt/%s or %s", name, filepath.Join(sysDir, name))
	}
	return filepath.Join(sysDir, name)
}

// isConnectionLost reports errors that mean the socket is gone rather than
// that libvirt refused the call.
func isConnectionLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EINVAL) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, golibvirt.ErrInterrupted)
}

// call runs fn on the live connection. When the connection had dropped
// before the call, conn dials anew; when it drops during the call, fn's
// error is returned as it is (retrying could repeat a define or a create)
// and the next call reconnects.
func (c *Client) call(ctx context.Context, fn func(lv *golibvirt.Libvirt) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lv, err := c.conn(ctx)
	if err != nil {
		return err
	}
	return fn(lv)
}

// libvirtCode returns libvirt's error number, or -1 for other errors.
func libvirtCode(err error) int {
	var lvErr golibvirt.Error
	if errors.As(err, &lvErr) {
		return int(lvErr.Code)
	}
	return -1
}

// isNotFoundCode reports libvirt's "no such object" error numbers: one for
// each kind of object, which go-libvirt's IsNotFound (domains only) misses.
func isNotFoundCode(err error) bool {
	switch golibvirt.ErrorNumber(libvirtCode(err)) {
	case golibvirt.ErrNoDomain, golibvirt.ErrNoNetwork, golibvirt.ErrNoStoragePool,
		golibvirt.ErrNoStorageVol, golibvirt.ErrNoNodeDevice, golibvirt.ErrNoInterface,
		golibvirt.ErrNoNwfilter, golibvirt.ErrNoSecret, golibvirt.ErrNoDomainSnapshot:
		return true
	}
	return false
}

func isExistsCode(err error) bool {
	switch golibvirt.ErrorNumber(libvirtCode(err)) {
	case golibvirt.ErrDomExist, golibvirt.ErrNetworkExist, golibvirt.ErrStorageVolExist:
		return true
	}
	return false
}

// wrap gives err the context of the operation and object, and maps libvirt's
// not-found and already-exists codes to virt.ErrNotFound and virt.ErrExists so
// that callers can use errors.Is.
func wrap(err error, op, kind, name string) error {
	if err == nil {
		return nil
	}
	switch {
	case isNotFoundCode(err):
		return fmt.Errorf("%s %s %q: %w (%w)", op, kind, name, virt.ErrNotFound, err)
	case isExistsCode(err):
		return fmt.Errorf("%s %s %q: %w (%w)", op, kind, name, virt.ErrExists, err)
	}
	return fmt.Errorf("%s %s %q: %w", op, kind, name, err)
}
