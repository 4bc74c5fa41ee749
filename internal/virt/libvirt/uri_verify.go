package libvirt

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// UnverifiedHostError is a URI parameter that would connect without
// checking who answers: go-libvirt's dialers honour no_verify (TLS: any
// server certificate; ssh: any host key) and known_hosts_verify=auto or
// ignore (libssh: an unknown key, or any key), and libvirt's own client
// does the same. A man in the middle would then get the connection and
// every credential and disk image that goes over it, so such URIs are
// refused rather than passed on.
type UnverifiedHostError struct {
	// Param is the parameter as written, e.g. "no_verify=1".
	Param string
	// Check is what the parameter switches off.
	Check string
	// Instead says how to connect with the check on.
	Instead string
}

func (e *UnverifiedHostError) Error() string {
	return fmt.Sprintf("parameter %s is refused: it switches off the check of %s; instead, %s", e.Param, e.Check, e.Instead)
}

// checkHostVerification refuses the parameters that switch off the check of
// the host's identity. libvirt matches parameter names without regard to
// case and a name may repeat, so every spelling and every value is looked
// at; a check on the first one alone would let "?no_verify=0&NO_VERIFY=1"
// through to a client that reads another.
func checkHostVerification(u *url.URL) error {
	q := u.Query()
	for _, name := range slices.Sorted(maps.Keys(q)) { // the same URI, the same error
		for _, v := range q[name] {
			if err := checkHostVerificationParam(u, name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkHostVerificationParam(u *url.URL, name, value string) error {
	param := name + "=" + value
	switch strings.ToLower(name) {
	case "no_verify":
		// libvirt and go-libvirt read it as a number, non-zero meaning
		// "do not verify"; only an explicit 0 is harmless.
		if n, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && n == 0 {
			return nil
		}
		return noVerifyError(u, param)
	case "known_hosts_verify":
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "auto":
			return &UnverifiedHostError{Param: param, Check: "the SSH host key (an unknown key is accepted and added to known_hosts)",
				Instead: addHostKey(u)}
		case "ignore":
			return &UnverifiedHostError{Param: param, Check: "the SSH host key (any key is accepted)",
				Instead: addHostKey(u)}
		}
	}
	return nil
}

// noVerifyError words the refusal of no_verify for the transport at hand.
func noVerifyError(u *url.URL, param string) error {
	_, transport, _ := strings.Cut(u.Scheme, "+")
	switch {
	case transport == "tls" || (transport == "" && u.Host != ""): // driver://host/ is TLS
		return &UnverifiedHostError{Param: param, Check: "the server's TLS certificate",
			Instead: fmt.Sprintf("trust the CA that signed the server's certificate: its cacert.pem is read from %s, or from the directory a pkipath=DIR parameter names",
				pkiFile(u, "cacert.pem", "/etc/pki/CA"))}
	case transport == "ssh" || transport == "libssh" || transport == "libssh2":
		return &UnverifiedHostError{Param: param, Check: "the SSH host key", Instead: addHostKey(u)}
	}
	return &UnverifiedHostError{Param: param, Check: "the host's identity",
		Instead: "remove it: a local socket or plain TCP has no host identity to check, and over ssh or tls the check must stay on"}
}

// addHostKey says where the host key of an ssh URI belongs.
func addHostKey(u *url.URL) string {
	_, transport, _ := strings.Cut(u.Scheme, "+")
	where := "the known_hosts file"
	if transport == "ssh" || transport == "libssh" || transport == "libssh2" {
		where = knownHostsFile(u, transport)
	}
	scan := "ssh-keyscan " + u.Hostname()
	if p := u.Port(); p != "" {
		scan = "ssh-keyscan -p " + p + " " + u.Hostname()
	}
	return fmt.Sprintf("add the host's key to %s after checking its fingerprint (e.g. %s, compared with ssh-keygen -lf on the host)",
		where, scan)
}
