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
	"sync/atomic"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
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

// Client is a few connections to one libvirt daemon, shared by every caller
// and safe for concurrent use. go-libvirt multiplexes calls over one
// socket, but libvirtd serves at most max_client_requests calls of one
// connection at a time (5 by default; users rarely change it, and must not
// have to) and reads nothing more from it meanwhile: with Terraform's 10
// changes at a time, half of a parallel apply's calls, quick lookups
// included, would wait behind the other half's machine starts and
// shutdowns. So a call goes to the least busy connection, and when every
// open one is at that limit another is dialled, up to maxConns. Idle, the
// client keeps one. Domain events all come over the first connection
// (events.go). When a connection drops, it leaves the pool and the next
// call that finds none dials again.
type Client struct {
	uri     *url.URL
	timeout time.Duration
	log     hclog.Logger

	mu sync.Mutex
	// conns are the live connections in the order they were dialled;
	// conns[0] carries the event subscriptions.
	conns []*poolConn
	// dialed is closed when the extra connection a caller is dialling
	// (outside mu) is open or failed; nil when no one dials one.
	dialed chan struct{}
	// closes counts Close calls: an extra connection whose dial began
	// before one is hung up instead of joining the pool.
	closes int
	// extraDialFailed is when dialling an extra connection last failed;
	// the client makes do with what it has for extraDialBackoff.
	extraDialFailed time.Time

	storageLocks poolLocks // see storage.go
}

// perConnRequests is libvirtd's default max_client_requests: how many calls
// of one connection it serves at once. A connection with that many in
// flight makes the next call wait.
const perConnRequests = 5

// maxConns caps the connections to one host. libvirtd's default max_workers
// is 20, 4 connections' worth of perConnRequests: calls beyond that wait
// for a worker however many connections carry them. And 4 cover
// Terraform's default parallelism of 10 twice over.
const maxConns = 4

// extraDialBackoff is how long a failed extra dial keeps the client from
// trying another (a daemon at its max_clients, say): the calls still go
// through on the connections there are, only queued.
const extraDialBackoff = 30 * time.Second

// poolConn is one of a client's connections.
type poolConn struct {
	lv  *golibvirt.Libvirt
	rpc *countingConn
	// holders counts the calls (Client.call) running on it. A holder has
	// at most one RPC out at a time, but it takes the connection before
	// it sends: the count closes the gap in which callers arriving
	// together would all see the socket idle and all pick it.
	holders atomic.Int32
}

// load is how many calls the connection carries: what is in flight on the
// socket, or the callers that hold it when those are more.
func (p *poolConn) load() int {
	return max(int(p.holders.Load()), p.rpc.calls())
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

// Close hangs up every connection. The client must not be used afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closes++
	var errs []error
	for _, pc := range c.conns {
		if err := pc.lv.Disconnect(); err != nil && !isConnectionLost(err) {
			errs = append(errs, err)
		}
	}
	c.conns = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("disconnect from %s: %w", c.URI(), err)
	}
	return nil
}

// conn returns the least busy live connection, dialling one when there is
// none, or another when all are busy (see Client).
func (c *Client) conn(ctx context.Context) (*golibvirt.Libvirt, error) {
	pc, err := c.acquire(ctx, false, false)
	if err != nil {
		return nil, err
	}
	return pc.lv, nil
}

// acquire picks a connection, for events the first one; with hold, it
// counts the caller as a holder before the next caller picks, which then
// sees it (the caller ends its hold with pc.holders.Add(-1)).
func (c *Client) acquire(ctx context.Context, forEvents, hold bool) (*poolConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pc, err := c.pick(ctx, forEvents)
	if err == nil && hold {
		pc.holders.Add(1)
	}
	return pc, err
}

// pick is acquire's choice, with c.mu held. Only one caller dials the
// first connection, while the others wait and share it. An extra one is
// dialled with c.mu released; callers that find every connection full
// meanwhile wait for it too rather than queue behind slow calls (a local
// dial takes a millisecond, a remote one a round trip or a handshake,
// where a domain start takes seconds).
func (c *Client) pick(ctx context.Context, forEvents bool) (*poolConn, error) {
	for {
		c.dropLost()
		if len(c.conns) == 0 {
			pc, err := c.dialConn(ctx)
			if err != nil {
				return nil, err
			}
			c.conns = append(c.conns, pc)
			return pc, nil
		}
		if forEvents {
			return c.conns[0], nil
		}
		best := c.conns[0]
		for _, pc := range c.conns[1:] {
			if pc.load() < best.load() {
				best = pc
			}
		}
		if best.load() < perConnRequests || len(c.conns) >= maxConns ||
			time.Since(c.extraDialFailed) < extraDialBackoff {
			return best, nil
		}
		if c.dialed == nil {
			return c.dialExtra(ctx, best)
		}
		dialed := c.dialed
		c.mu.Unlock()
		select {
		case <-dialed:
		case <-ctx.Done():
		}
		c.mu.Lock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// dialExtra dials another connection with c.mu released, and returns it,
// or fallback when the dial fails. Called, and returns, with c.mu held.
func (c *Client) dialExtra(ctx context.Context, fallback *poolConn) (*poolConn, error) {
	dialed := make(chan struct{})
	c.dialed = dialed
	closes := c.closes
	busy := fallback.load()
	c.mu.Unlock()
	pc, err := c.dialConn(ctx)
	c.mu.Lock()
	c.dialed = nil
	close(dialed)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		c.extraDialFailed = time.Now()
		c.log.Warn("could not open another connection; calls queue on the open ones", "open", len(c.conns), "error", err)
		return fallback, nil
	case c.closes != closes:
		_ = pc.lv.Disconnect()
		return fallback, nil
	}
	c.conns = append(c.conns, pc)
	c.log.Debug("opened another connection: every open one was at libvirtd's limit of calls", "open", len(c.conns), "calls", busy)
	return pc, nil
}

// dropLost forgets the connections that dropped. Called with c.mu held.
func (c *Client) dropLost() {
	live := c.conns[:0]
	for _, pc := range c.conns {
		if pc.lv.IsConnected() {
			live = append(live, pc)
		}
	}
	if lost := len(c.conns) - len(live); lost > 0 {
		// With none left, the caller dials again at once.
		c.log.Info("connection to libvirt lost", "lost", lost, "open", len(live))
	}
	clear(c.conns[len(live):])
	c.conns = live
}

// connCount is how many connections the client has open.
func (c *Client) connCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLost()
	return len(c.conns)
}

// dial opens a connection of its own, outside the pool, for a caller that
// must be able to close it (StreamConsole).
func (c *Client) dial(ctx context.Context) (*golibvirt.Libvirt, error) {
	pc, err := c.dialConn(ctx)
	if err != nil {
		return nil, err
	}
	return pc.lv, nil
}

// dialConn connects and shakes hands under a deadline. go-libvirt's
// handshake takes no context, so it runs in a goroutine and is abandoned
// (and its socket closed) if the deadline passes first: a peer that accepts
// TCP but never speaks libvirt must not hang the caller.
func (c *Client) dialConn(ctx context.Context) (*poolConn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()

	type result struct {
		pc  *poolConn
		err error
	}
	done := make(chan result, 1)
	go func() {
		pc, err := c.connectOnce()
		done <- result{pc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, &DialError{URI: c.URI(), Reason: explainDialError(c.uri, r.err), Err: r.err}
		}
		c.log.Debug("connected", "elapsed", time.Since(start))
		return r.pc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.pc != nil {
				_ = r.pc.lv.Disconnect()
			}
		}()
		return nil, &DialError{URI: c.URI(), Reason: fmt.Sprintf("no answer within %s (is libvirtd running and reachable?)", c.timeout), Err: ctx.Err()}
	}
}

// countingDialer hands go-libvirt the connections of dialer wrapped in a
// countingConn, and keeps the last one for the pool to read its count.
type countingDialer struct {
	dialer socket.Dialer
	conn   *countingConn
}

func (d *countingDialer) Dial() (net.Conn, error) {
	nc, err := d.dialer.Dial()
	if err != nil {
		return nil, err
	}
	d.conn = newCountingConn(nc)
	return d.conn, nil
}

func (c *Client) connectOnce() (*poolConn, error) {
	dialer, err := dialerFor(c.uri, c.timeout)
	if err != nil {
		return nil, err
	}
	d := &countingDialer{dialer: dialer}
	lv := golibvirt.NewWithDialer(d)
	if err := lv.ConnectToURI(golibvirt.RemoteURI(c.uri)); err != nil {
		return nil, err
	}
	return &poolConn{lv: lv, rpc: d.conn}, nil
}

// dialerFor builds the dialer for u's transport from go-libvirt's dialers.
// go-libvirt would choose one itself (ConnectToURI), but gives no way to
// see the connection it opens, which the pool counts calls on; so the
// transports' parameters are mapped here, as libvirt reads them. ParseURI
// has refused the ones that switch host checks off.
func dialerFor(u *url.URL, timeout time.Duration) (socket.Dialer, error) {
	q := u.Query()
	_, transport, _ := strings.Cut(u.Scheme, "+")
	if transport == "" {
		transport = "unix"
		if u.Host != "" {
			transport = "tls" // driver://host/ means TLS, as in libvirt
		}
	}
	switch transport {
	case "unix":
		if err := checkMode(q); err != nil {
			return nil, err
		}
		opts := []dialers.LocalOption{dialers.WithLocalTimeout(timeout)}
		if s := q.Get("socket"); s != "" {
			opts = append(opts, dialers.WithSocket(s))
		}
		return dialers.NewLocal(opts...), nil
	case "tcp":
		opts := []dialers.RemoteOption{dialers.WithRemoteTimeout(timeout)}
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UsePort(p))
		}
		return dialers.NewRemote(u.Hostname(), opts...), nil
	case "tls":
		var opts []dialers.TLSOption
		if p := u.Port(); p != "" {
			opts = append(opts, dialers.UseTLSPort(p))
		}
		if dir := q.Get("pkipath"); dir != "" {
			opts = append(opts, dialers.UsePKIPath(dir))
		}
		return dialers.NewTLS(u.Hostname(), opts...), nil
	case "ssh", "libssh", "libssh2":
		return sshDialer(u, transport)
	}
	return nil, fmt.Errorf("unsupported libvirt transport %q", transport)
}

// sshDialer maps the parameters of the ssh transports. qemu+ssh stands for
// the system's ssh client, so it reads ~/.ssh/known_hosts and takes none of
// libssh's own parameters; libssh reads libvirt's known_hosts file (or the
// one named), and lets sshauth order the ways to log in.
func sshDialer(u *url.URL, transport string) (socket.Dialer, error) {
	q := u.Query()
	if err := checkMode(q); err != nil {
		return nil, err
	}
	var opts []dialers.SSHOption
	if transport == "ssh" {
		usr, err := user.Current()
		if err != nil {
			return nil, err
		}
		opts = append(opts, dialers.WithSystemSSHDefaults(usr))
		var refused []error
		for _, name := range []string{"known_hosts", "known_hosts_verify", "sshauth"} {
			if q.Get(name) != "" {
				refused = append(refused, fmt.Errorf("parameter %s is not read by the ssh transport; use qemu+libssh:// for it", name))
			}
		}
		if err := errors.Join(refused...); err != nil {
			return nil, err
		}
	} else {
		if q.Get("no_verify") != "" {
			return nil, fmt.Errorf("parameter no_verify is not read by the %s transport; its host key check is known_hosts_verify", transport)
		}
		if f := q.Get("known_hosts"); f != "" {
			opts = append(opts, dialers.UseKnownHostsFile(f))
		}
		switch v := q.Get("known_hosts_verify"); v {
		case "", "normal":
		default: // auto and ignore are refused by ParseURI
			return nil, fmt.Errorf("known_hosts_verify=%s is not supported (only normal)", v)
		}
		if auth := q.Get("sshauth"); auth != "" {
			methods := &dialers.SSHAuthMethods{}
			for _, m := range strings.Split(auth, ",") {
				switch strings.ToLower(m) {
				case "agent":
					methods.Agent()
				case "privkey":
					methods.PrivKey()
				case "password":
					methods.Password()
				case "keyboard-interactive":
					methods.KeyboardInteractive()
				default:
					return nil, fmt.Errorf("sshauth=%s: unknown method %q (agent, privkey, password, keyboard-interactive)", auth, m)
				}
			}
			opts = append(opts, dialers.WithSSHAuthMethods(methods))
		}
	}
	if p := u.Port(); p != "" {
		opts = append(opts, dialers.UseSSHPort(p))
	}
	if name := u.User.Username(); name != "" {
		opts = append(opts, dialers.UseSSHUsername(name))
	}
	if pw, ok := u.User.Password(); ok {
		opts = append(opts, dialers.UseSSHPassword(pw))
	}
	if s := q.Get("socket"); s != "" {
		opts = append(opts, dialers.WithRemoteSocket(s))
	}
	if f := q.Get("keyfile"); f != "" {
		opts = append(opts, dialers.UseKeyFile(f))
	}
	return dialers.NewSSH(u.Hostname(), opts...), nil
}

// checkMode refuses libvirt's mode parameter (of the local and ssh
// transports) where this client cannot do what it asks: it always reaches
// libvirtd's (or virtproxyd's) socket, the "legacy" way; "direct" would
// talk to a driver daemon's own.
func checkMode(q url.Values) error {
	switch m := strings.ToLower(q.Get("mode")); m {
	case "", "auto", "legacy":
		return nil
	case "direct":
		return errors.New("mode=direct is not supported: the connection goes to libvirtd's socket (mode=legacy)")
	default:
		return fmt.Errorf("mode=%s is unknown (auto, legacy or direct)", m)
	}
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

// call runs fn on a connection of the pool (see Client). When the
// connection had dropped before the call, a live one is taken or dialled;
// when it drops during the call, fn's error is returned as it is (retrying
// could repeat a define or a create) and the next call reconnects.
func (c *Client) call(ctx context.Context, fn func(lv *golibvirt.Libvirt) error) error {
	return c.callOn(ctx, false, fn)
}

// callOn is call, on the connection that carries the events when forEvents
// is set.
func (c *Client) callOn(ctx context.Context, forEvents bool, fn func(lv *golibvirt.Libvirt) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pc, err := c.acquire(ctx, forEvents, true)
	if err != nil {
		return err
	}
	defer pc.holders.Add(-1)
	return fn(pc.lv)
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
