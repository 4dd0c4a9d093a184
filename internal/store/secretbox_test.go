package store

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

func TestSecretLoadKeyCreatesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "secret.key")
	k1, err := secretLoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("key is %d bytes", len(k1))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	k2, err := secretLoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("second load returned a different key")
	}
	if bytes.Equal(k1, make([]byte, 32)) {
		t.Fatal("key is all zeros")
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("key directory holds %d entries, want 1", len(ents))
	}
}

func TestSecretLoadKeyConcurrentCreators(t *testing.T) {
	for round := 0; round < 20; round++ {
		path := filepath.Join(t.TempDir(), "secret.key")
		const n = 8
		keys := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				keys[i], errs[i] = secretLoadKey(path)
			}()
		}
		wg.Wait()
		for i := 0; i < n; i++ {
			if errs[i] != nil {
				t.Fatalf("creator %d: %v", i, errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("creators %d and 0 got different keys", i)
			}
		}
	}
}

func TestSecretLoadKeyRefusals(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{0xA5}, 32)

	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, path, want string
	}{
		{"short", write("short", key[:31], 0o600), "31 bytes long"},
		{"long", write("long", append(key, key...), 0o600), "64 bytes long"},
		{"empty", write("empty", nil, 0o600), "0 bytes long"},
		{"group-readable", write("group", key, 0o640), "chmod 600"},
		{"world-readable", write("world", key, 0o604), "mode 0604"},
		{"directory", dir, "not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := secretLoadKey(c.path)
			if err == nil {
				t.Fatalf("loaded a key (%d bytes), want refusal", len(got))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			for _, leak := range []string{string(key[:8]), hex.EncodeToString(key[:8]), base64.StdEncoding.EncodeToString(key[:9])} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q contains key material", err)
				}
			}
		})
	}

	ok := write("ok", key, 0o600)
	got, err := secretLoadKey(ok)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("good key file: %v", err)
	}
}

func TestSecretSealOpen(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	aad := secretAAD("repo:12", "DEPLOY_KEY")
	if string(aad) != "repo:12:DEPLOY_KEY" {
		t.Fatalf("aad %q", aad)
	}
	for _, plain := range [][]byte{nil, []byte("x"), []byte("hunter2\nline two"), bytes.Repeat([]byte{0xff}, SecretValueMax)} {
		ct, err := secretSeal(key, aad, plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(plain)+29 || ct[0] != secretSealV1 {
			t.Fatalf("ciphertext: %d bytes, version %d", len(ct), ct[0])
		}
		if len(plain) > 4 && bytes.Contains(ct, plain) {
			t.Fatal("ciphertext contains the plaintext")
		}
		got, err := secretOpen(key, aad, ct)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatal("round trip changed the value")
		}
		ct2, _ := secretSeal(key, aad, plain)
		if bytes.Equal(ct, ct2) {
			t.Fatal("two seals of one value are identical: nonce not random")
		}
	}

	ct, _ := secretSeal(key, aad, []byte("hunter2"))
	other := make([]byte, 32)
	rand.Read(other)
	if _, err := secretOpen(other, aad, ct); err == nil {
		t.Error("opened under another key")
	}
	for _, a := range []string{"repo:12:OTHER", "repo:13:DEPLOY_KEY", "org:12:DEPLOY_KEY", ""} {
		if _, err := secretOpen(key, []byte(a), ct); err == nil {
			t.Errorf("opened with aad %q", a)
		}
	}
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if got, err := secretOpen(key, aad, bad); err == nil {
			t.Fatalf("flipping byte %d opened to %q", i, got)
		}
	}
	for n := 0; n < len(ct); n++ {
		if _, err := secretOpen(key, aad, ct[:n]); err == nil {
			t.Fatalf("truncation to %d bytes opened", n)
		}
	}
	bad := bytes.Clone(ct)
	bad[0] = 9
	if _, err := secretOpen(key, aad, bad); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("unknown version: %v", err)
	}
	if _, err := secretSeal(key[:16], aad, []byte("x")); err == nil {
		t.Error("sealed with a 16-byte key")
	}
	if _, err := secretOpen(key, aad, ct); err != nil {
		t.Fatal(err)
	}
	_, err := secretOpen(other, aad, ct)
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q contains the plaintext", err)
	}
}

// A sealed box made by libsodium, not by the Go code under test: Debian's
// python3-nacl 1.5.0 (PyNaCl over libsodium), with
//
//	priv = hashlib.sha256(b"shithub-actions sealed box test vector").digest()
//	pk = nacl.public.PrivateKey(priv).public_key
//	base64.b64encode(nacl.public.SealedBox(pk).encrypt(msg))
const (
	secretTestVectorPriv  = "dcf6fdea1c8d89828e70ba3e9e8bbed753f47fb95fac4ad6d5fc1603642dbc97"
	secretTestVectorPub   = "Wv4uE5jRxrdBeCbTpOnys5PAkvDWwep8peYgN/ItRSE="
	secretTestVectorMsg   = "s3cr3t-Value with \u00fcn\u00efcode\nand a second line"
	secretTestVectorBox   = "btBSOyiUnhZJEIsl4mPddC5youMWfnXDU8MPUFdzlCmJtl7ZZwSV0zUh7Lbbkc4rcxt0ISksMOz3dnMAc2pzzcYh7fvwOLToweig5yDyewdSxNkK8syBZ5LdG3Gm"
	secretTestVectorEmpty = "+Vb26424yZu/cKX2BOIoMRWK337G2wXty44vvXRoyitAeze6iVPuJQGLPC4ACvZ2"
)

func secretTestVectorKeys(t testing.TB) (pub, priv *[32]byte) {
	raw, err := hex.DecodeString(secretTestVectorPriv)
	if err != nil {
		t.Fatal(err)
	}
	priv = new([32]byte)
	copy(priv[:], raw)
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	pub = new([32]byte)
	copy(pub[:], p)
	return pub, priv
}

func TestSecretOpenSealedBoxLibsodiumVector(t *testing.T) {
	pub, priv := secretTestVectorKeys(t)
	if got := SecretBoxPublicKey(pub); got != secretTestVectorPub {
		t.Fatalf("public key %s, libsodium says %s", got, secretTestVectorPub)
	}
	got, err := SecretOpenSealedBox(secretTestVectorBox, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != secretTestVectorMsg {
		t.Fatalf("opened to %q", got)
	}
	got, err = SecretOpenSealedBox(secretTestVectorEmpty, pub, priv)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty value: %q, %v", got, err)
	}
	// Unpadded base64 and surrounding whitespace are tolerated.
	got, err = SecretOpenSealedBox(" "+strings.TrimRight(secretTestVectorBox, "=")+"\n", pub, priv)
	if err != nil || string(got) != secretTestVectorMsg {
		t.Fatalf("unpadded: %q, %v", got, err)
	}
}

func TestSecretOpenSealedBoxRoundTrip(t *testing.T) {
	pub, priv, err := secretNewBoxKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"", "a", "hunter2", strings.Repeat("z", SecretValueMax)} {
		// What gh, go-github users and actions/toolkit do.
		sealed, err := box.SealAnonymous(nil, []byte(msg), pub, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		got, err := SecretOpenSealedBox(base64.StdEncoding.EncodeToString(sealed), pub, priv)
		if err != nil {
			t.Fatalf("%d-byte value: %v", len(msg), err)
		}
		if string(got) != msg {
			t.Fatalf("%d-byte value opened to %d bytes", len(msg), len(got))
		}
	}

	sealed, _ := box.SealAnonymous(nil, []byte("hunter2"), pub, rand.Reader)
	b64 := base64.StdEncoding.EncodeToString(sealed)
	pub2, priv2, _ := secretNewBoxKey()
	if _, err := SecretOpenSealedBox(b64, pub2, priv2); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Errorf("other key pair: %v", err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x80
		if _, err := SecretOpenSealedBox(base64.StdEncoding.EncodeToString(bad), pub, priv); err == nil {
			t.Fatalf("flipped byte %d opened", i)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"not base64!", "not valid base64"},
		{base64.StdEncoding.EncodeToString(sealed[:47]), "at least 48 bytes"},
		{strings.Repeat("A", 70000), "more than a 49152-byte secret"},
	} {
		if _, err := SecretOpenSealedBox(c.in, pub, priv); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.20q: error %v, want %q", c.in, err, c.want)
		}
	}
	tooBig, _ := box.SealAnonymous(nil, make([]byte, SecretValueMax+1), pub, rand.Reader)
	if _, err := SecretOpenSealedBox(base64.StdEncoding.EncodeToString(tooBig), pub, priv); err == nil {
		t.Error("opened a box holding more than 48 KiB")
	}
}

func TestSecretBoxKeyID(t *testing.T) {
	pub, _ := secretTestVectorKeys(t)
	id := SecretBoxKeyID(pub)
	if id != SecretBoxKeyID(pub) {
		t.Fatal("key_id is not stable")
	}
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		p, _, err := secretNewBoxKey()
		if err != nil {
			t.Fatal(err)
		}
		id := SecretBoxKeyID(p)
		if len(id) != 18 || id[0] == '0' {
			t.Fatalf("key_id %q: want 18 digits without a leading zero", id)
		}
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != id {
			t.Fatalf("key_id %q does not survive an int64 round trip", id)
		}
		if seen[id] {
			t.Fatalf("key_id %q repeated", id)
		}
		seen[id] = true
	}
}

func TestSecretCheckName(t *testing.T) {
	good := map[string]string{
		"DEPLOY_KEY": "DEPLOY_KEY",
		"deploy_key": "DEPLOY_KEY",
		"_x":         "_X",
		"a1":         "A1",
		"GITHUB":     "GITHUB",
		"GITHUBX_Y":  "GITHUBX_Y",
		"MY_GITHUB_": "MY_GITHUB_",
		"_":          "_",
	}
	for in, want := range good {
		got, err := secretCheckName(in)
		if err != nil || got != want {
			t.Errorf("secretCheckName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                       "empty",
		"1ABC":                   "starts with a digit",
		"9":                      "starts with a digit",
		"GITHUB_TOKEN":           "GITHUB_",
		"github_token":           "GITHUB_",
		"GitHub_x":               "GITHUB_",
		"MY-KEY":                 `contains "-"`,
		"MY KEY":                 `contains " "`,
		"KEY.PROD":               `contains "."`,
		"CLÉ":                    `contains "É"`,
		"A\x00":                  `contains "\x00"`,
		strings.Repeat("A", 256): "limit is 255",
	}
	for in, want := range bad {
		_, err := secretCheckName(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("secretCheckName(%.30q) error %v, want %q", in, err, want)
		}
	}
	if _, err := secretCheckName(strings.Repeat("A", 255)); err != nil {
		t.Error(err)
	}
}

func TestSecretCheckValue(t *testing.T) {
	for _, n := range []int{0, 1, SecretValueMax} {
		if err := SecretCheckValue(bytes.Repeat([]byte("v"), n)); err != nil {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	err := SecretCheckValue(make([]byte, SecretValueMax+1))
	if err == nil || !strings.Contains(err.Error(), "49153 bytes long; the limit is 49152") {
		t.Errorf("too long: %v", err)
	}
	if err := SecretCheckValue([]byte("ab\x00c")); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("NUL: %v", err)
	}
	if err := SecretCheckValue([]byte("line1\nline2\r\n\xff")); err != nil {
		t.Errorf("newlines and non-UTF-8: %v", err)
	}
}
