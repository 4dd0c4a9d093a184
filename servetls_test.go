package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"shithub-actions/internal/apperr"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// into dir, and returns their files and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeTLSFlags: bad TLS flags and files are usage errors: one line
// on stderr, exit 2, nothing made.
func TestServeTLSFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key, _ := selfSigned(t, dir)
	_, otherKey, _ := selfSigned(t, t.TempDir())
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not PEM\n"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", cert}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-key", key}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-cert", missing, "--tls-key", key}, "no such file"},
		{[]string{"--tls-cert", cert, "--tls-key", missing}, "no such file"},
		{[]string{"--tls-cert", garbage, "--tls-key", key}, "failed to find any PEM data"},
		{[]string{"--tls-cert", cert, "--tls-key", garbage}, "failed to find any PEM data"},
		{[]string{"--tls-cert", key, "--tls-key", cert}, "--tls-cert"},
		{[]string{"--tls-cert", cert, "--tls-key", otherKey}, "private key does not match public key"},
		{[]string{"--acme", "ci.example.com", "--tls-cert", cert, "--tls-key", key}, "exclude each other"},
		{[]string{"--acme", "localhost"}, "want a public DNS name"},
		{[]string{"--acme", "127.0.0.1"}, "want a public DNS name"},
		{[]string{"--acme", "https://ci.example.com"}, "want a public DNS name"},
		{[]string{"--acme", "ci.example.com", "--acme-http-addr", "80"}, "bad --acme-http-addr"},
	} {
		fresh := t.TempDir()
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"--db", filepath.Join(fresh, "ci.db"), "serve"}, tt.args...), strings.NewReader(""), &stdout, &stderr)
		if !errors.As(err, new(apperr.UsageError)) {
			t.Errorf("serve %q: %v, want a usage error", tt.args, err)
		}
		if code := exitCode(err, &stderr); code != 2 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("serve %q: exit %d, stderr %q; want exit 2 and one line with %q", tt.args, code, stderr.String(), tt.want)
		}
		if left, _ := os.ReadDir(fresh); len(left) != 0 {
			t.Errorf("serve %q made %s before refusing its flags", tt.args, left[0].Name())
		}
	}
	// Good ones parse, and say TLS is on.
	for _, args := range [][]string{{"--tls-cert", cert, "--tls-key", key}, {"--acme", "ci.example.com"}} {
		sc, err := (&cli{db: filepath.Join(dir, "ci.db"), stderr: io.Discard}).parseServeArgs(args, func(string) string { return "" })
		if err != nil || !sc.tls.on() {
			t.Errorf("parseServeArgs(%q) = TLS on %v, %v", args, sc.tls.on(), err)
		}
	}
}

// TestServeTLS runs serve with --tls-cert and --tls-key: it answers over
// HTTPS, names https URLs under the prefix the client used, refuses plain
// HTTP, and its session cookie is Secure.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	db := filepath.Join(dir, "ci.db")
	if code, _, stderr := cliRun(t, db, "", "user", "create", "alice"); code != 0 {
		t.Fatal(stderr)
	}
	_, out, _ := cliRun(t, db, "", "token", "create", "alice", "--scopes", "repo:read")
	token := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stdout, stderr syncBuf
	go func() {
		done <- run(ctx, []string{"--db", db, "serve", "--addr", addr, "--runners", "0", "--job-addr", "off",
			"--tls-cert", cert, "--tls-key", key}, strings.NewReader(""), &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, stderr.String())
		}
	})
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := "https://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, err := client.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer over HTTPS: %v\n%s", err, stderr.String())
		}
	}

	for _, prefix := range []string{"/api/v1", "/api/v3"} {
		req, _ := http.NewRequest("GET", base+prefix+"/", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var root map[string]string
		json.NewDecoder(res.Body).Decode(&root)
		res.Body.Close()
		if res.StatusCode != 200 || root["repository_url"] != base+prefix+"/repos/{owner}/{repo}" {
			t.Errorf("GET %s/: %d %v", prefix, res.StatusCode, root)
		}
	}

	// Plain HTTP on the TLS port is refused.
	if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: %d, want 400", res.StatusCode)
		}
	}

	// Signing in over TLS sets a Secure cookie (no --base-url: the
	// connection alone says so).
	res, err := client.PostForm(base+"/login", url.Values{"username": {"alice"}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == webSessionCookie {
			session = c
		}
	}
	if res.StatusCode != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly {
		t.Errorf("sign-in over TLS: %d, cookie %+v; want a Secure, HttpOnly session cookie", res.StatusCode, session)
	}
}

// TestSessionCookieSecureOnlyUnderTLS: the same sign-in over plain HTTP,
// with no https --base-url, sets a cookie without Secure (a browser would
// not send a Secure cookie back over http).
func TestSessionCookieSecureOnlyUnderTLS(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	srv := newServer(ts.store, ts.srv.log, "")
	for _, overTLS := range []bool{false, true} {
		req := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"username": {"alice"}, "token": {ts.tokens["alice:read"]}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if overTLS {
			req.TLS = &tlsState
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		cookies := rec.Result().Cookies()
		if rec.Code != http.StatusSeeOther || len(cookies) != 1 || cookies[0].Secure != overTLS {
			t.Errorf("sign-in (TLS %v): %d, cookies %+v; want one cookie with Secure %v", overTLS, rec.Code, cookies, overTLS)
		}
	}
}

// tlsState marks a test request as one that came over TLS.
var tlsState tls.ConnectionState

// syncBuf is a buffer serve writes to while the test reads it.
type syncBuf struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestACMEConfig checks --acme's wiring without a CA: the certificate
// cache is a private directory in the data directory, the TLS
// configuration gets certificates from the manager and speaks the
// tls-alpn-01 protocol, and the plain HTTP handler redirects to https
// except on ACME's challenge path. Getting a certificate needs a CA and a
// public name, which no test here has.
func TestACMEConfig(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	st := serveTLS{acmeDomain: "ci.example.com", acmeHTTPAddr: ":80"}
	if err := st.check(); err != nil {
		t.Fatal(err)
	}
	cfg, h, err := st.config(data)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(data, acmeCacheDir))
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("ACME cache %s: %v, %v; want a directory, mode 0700", filepath.Join(data, acmeCacheDir), fi, err)
	}
	if cfg.GetCertificate == nil || !strings.Contains(strings.Join(cfg.NextProtos, ","), "acme-tls/1") || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config: GetCertificate set %v, NextProtos %v, MinVersion %x", cfg.GetCertificate != nil, cfg.NextProtos, cfg.MinVersion)
	}
	// A name the manager is not for gets no certificate, and asks no CA.
	if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example.com"}); err == nil {
		t.Error("GetCertificate for another name succeeded")
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://ci.example.com/alice/hello/actions?x=1", nil))
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "https://ci.example.com/alice/hello/actions?x=1" {
		t.Errorf("plain HTTP: %d to %q, want 302 to the https URL", rec.Code, rec.Header().Get("Location"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://ci.example.com/.well-known/acme-challenge/unknown-token", nil))
	if rec.Code == http.StatusFound {
		t.Errorf("ACME challenge path redirected: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
}

// TestTLSJobAddr: under TLS, jobs (plain HTTP) never get the main
// listener's port.
func TestTLSJobAddr(t *testing.T) {
	gw := func() (string, error) { return "172.17.0.1", nil }
	noDocker := func() (string, error) { return "", errors.New("no engine") }
	for _, tt := range []struct {
		name, addr, jobAddr string
		gateway             func() (string, error)
		want                string
		warn                bool
	}{
		{"loopback: auto already listens on the bridge", "127.0.0.1:443", "auto", gw, "auto", false},
		{"every interface: the bridge, a port of its own", ":443", "auto", gw, "172.17.0.1:0", false},
		{"a public address", "192.0.2.7:443", "", gw, "172.17.0.1:0", false},
		{"no engine", ":443", "auto", noDocker, "auto", true},
		{"chosen", ":443", "10.0.0.5:7000", noDocker, "10.0.0.5:7000", false},
		{"off", ":443", "off", gw, "off", true},
	} {
		got, warn := tlsJobAddr(tt.addr, tt.jobAddr, tt.gateway)
		if got != tt.want || (warn != "") != tt.warn {
			t.Errorf("%s: %q, warning %q; want %q, warning %v", tt.name, got, warn, tt.want, tt.warn)
		}
	}
	// The plan then names the job listener's own port, plain http.
	e, err := planJobEndpoint(":443", "172.17.0.1:0", "", gw)
	if err != nil {
		t.Fatal(err)
	}
	e.finish(40123)
	if e.Listen != "172.17.0.1:0" || e.URL != "http://shithub.localhost:40123" {
		t.Errorf("plan: listen %q, url %q", e.Listen, e.URL)
	}
}
