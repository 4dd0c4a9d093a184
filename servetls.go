// HTTPS in the binary: serve --tls-cert/--tls-key, or certificates from
// an ACME CA (Let's Encrypt) for a public name with --acme. The job
// listener (jobaddr.go) stays plain HTTP: it is on the Docker bridge, and
// jobs know the server by a name no CA would certify.

package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/acme/autocert"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/hostfile"
)

// serveTLS is serve's HTTPS configuration, from its flags.
type serveTLS struct {
	certFile, keyFile string // --tls-cert, --tls-key
	acmeDomain        string // --acme: the public name to get certificates for
	acmeHTTPAddr      string // --acme-http-addr: the plain HTTP listener (ACME http-01 and a redirect)

	cert *tls.Certificate // loaded from certFile and keyFile by check
}

// acmeCacheDir is where --acme keeps its account key and certificates,
// under the data directory.
const acmeCacheDir = "acme"

// flags declares the TLS flags on fs.
func (t *serveTLS) flags(fs *flag.FlagSet) {
	fs.StringVar(&t.certFile, "tls-cert", "", "serve HTTPS with the certificate (chain) in `FILE`, PEM; needs --tls-key")
	fs.StringVar(&t.keyFile, "tls-key", "", "the private key of --tls-cert, PEM `FILE`")
	fs.StringVar(&t.acmeDomain, "acme", "", "serve HTTPS with certificates for `DOMAIN` from Let's Encrypt (ACME), cached in the data directory; --addr should then be :443")
	fs.StringVar(&t.acmeHTTPAddr, "acme-http-addr", ":80", "with --acme, the plain HTTP listener that answers ACME's http-01 challenges and redirects everything else to https")
}

// check validates the flags and loads the certificate and key, so that a
// bad file is a usage error before anything opens.
func (t *serveTLS) check() error {
	switch {
	case t.acmeDomain != "" && (t.certFile != "" || t.keyFile != ""):
		return apperr.Usagef("serve: --acme and --tls-cert/--tls-key exclude each other")
	case (t.certFile == "") != (t.keyFile == ""):
		return apperr.Usagef("serve: --tls-cert and --tls-key go together")
	case t.acmeDomain != "":
		d := t.acmeDomain
		if strings.ContainsAny(d, "/:* ") || !strings.Contains(d, ".") || net.ParseIP(d) != nil {
			return apperr.Usagef("serve: --acme %q: want a public DNS name, such as ci.example.com", d)
		}
		if _, _, err := net.SplitHostPort(t.acmeHTTPAddr); err != nil {
			return apperr.Usagef("serve: bad --acme-http-addr %q: %v", t.acmeHTTPAddr, err)
		}
	case t.certFile != "":
		cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
		if err != nil {
			return apperr.Usagef("serve: --tls-cert %s, --tls-key %s: %v", t.certFile, t.keyFile, err)
		}
		t.cert = &cert
	}
	return nil
}

// on says whether serve speaks HTTPS.
func (t *serveTLS) on() bool { return t.cert != nil || t.acmeDomain != "" }

// config is the main listener's TLS configuration; with --acme, also the
// handler of the plain HTTP listener (challenges, and a redirect to https).
// The ACME cache is made private (0700) in dataDir; autocert writes its
// files 0600.
func (t *serveTLS) config(dataDir string) (*tls.Config, http.Handler, error) {
	if t.cert != nil {
		return &tls.Config{Certificates: []tls.Certificate{*t.cert}, MinVersion: tls.VersionTLS12}, nil, nil
	}
	m, err := t.acmeManager(dataDir)
	if err != nil {
		return nil, nil, err
	}
	cfg := m.TLSConfig()
	cfg.MinVersion = tls.VersionTLS12
	return cfg, m.HTTPHandler(nil), nil
}

// acmeManager is the autocert manager for --acme: Let's Encrypt, this one
// name only, its cache in dataDir.
func (t *serveTLS) acmeManager(dataDir string) (*autocert.Manager, error) {
	dir := filepath.Join(dataDir, acmeCacheDir)
	if err := hostfile.MkdirPrivate(dir); err != nil {
		return nil, fmt.Errorf("the ACME cache: %w", err)
	}
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(t.acmeDomain),
		Cache:      autocert.DirCache(dir),
	}, nil
}

// tlsJobAddr is the --job-addr to use when the main listener speaks TLS
// and no --job-url says where jobs go: jobs reach the server over plain
// HTTP, so never through the main listener. With a loopback --addr, auto
// already opens a plain listener on the Docker bridge. Otherwise auto
// would send jobs to the main (TLS) port, so the job listener goes on the
// bridge's address at a port of its own. warn says why jobs may not reach
// the server.
func tlsJobAddr(addr, jobAddr string, gateway func() (string, error)) (string, string) {
	host, _, _ := net.SplitHostPort(addr)
	switch {
	case jobAddr == "off":
		return jobAddr, "jobs cannot reach the server: --addr speaks TLS, jobs plain HTTP, and --job-addr is off; give --job-addr HOST:PORT or --job-url"
	case jobAddr != "" && jobAddr != "auto", isLoopbackHost(host):
		return jobAddr, ""
	}
	gw, err := gateway()
	if err != nil {
		return jobAddr, fmt.Sprintf("jobs cannot reach the server: --addr speaks TLS, jobs plain HTTP, and the Docker bridge's address to listen on for them is unknown (%v); give --job-addr HOST:PORT or --job-url", err)
	}
	return net.JoinHostPort(gw, "0"), ""
}
