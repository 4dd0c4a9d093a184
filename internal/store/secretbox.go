package store

// Encryption for repository secrets.
//
// Two layers:
//
//   - At rest, every secret value is sealed with AES-256-GCM under one
//     server key (secretLoadKey). The additional data names the secret's
//     owner and name, so a ciphertext copied into another row fails to open.
//   - In transit, GitHub-compatible clients (gh secret set, go-github,
//     PyGithub, actions/toolkit) encrypt a value for a repository with a
//     libsodium sealed box (crypto_box_seal) to the repository's X25519 public
//     key; secretOpenSealedBox opens it with the repository's private key.
//
// None of these functions put key material or plaintext into an error.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/nacl/box"
)

const (
	// secretKeySize is the size of the server key: AES-256.
	secretKeySize = 32

	// secretSealV1 is the first byte of every ciphertext secretSeal makes:
	// AES-256-GCM, 12-byte random nonce, 16-byte tag. A later format takes a
	// new version byte and secretOpen keeps opening the old one.
	secretSealV1 = 0x01

	// secretNonceSize is the GCM standard nonce size (96 bits). Random
	// nonces are safe for far more than 2^32 seals under one key, which
	// secrets will never approach.
	secretNonceSize = 12

	// secretValueMax is GitHub's limit on a secret's value: 48 KB.
	SecretValueMax = 48 * 1024

	// secretNameMax is our own bound on a name's length; GitHub documents
	// none, but a name is a column, an environment variable and a URL path
	// element, and nobody needs more.
	secretNameMax = 255
)

// secretLoadKey reads the server's 32-byte secret key from path, creating it
// with fresh random bytes and mode 0600 when it does not exist yet.
//
// Creation cannot race: the key is written in full to a temporary file opened
// with O_EXCL and then published with link(2), which fails when path already
// exists, so of two processes starting at once exactly one key wins and both
// use it, and no process ever reads a half-written key. (Where the file
// system has no hard links, path itself is created with O_EXCL.)
//
// A key file of the wrong size, one that is not a regular file, or one that
// group or others may read or write is refused: losing that file means losing
// every secret, and leaking it means leaking every secret, so it is better to
// stop and say why than to carry on.
func secretLoadKey(path string) ([]byte, error) {
	key, err := secretReadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := secretCreateKey(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	// Read back whichever key won, ours or a concurrent creator's.
	return secretReadKey(path)
}

// secretReadKey opens and checks an existing key file. The checks use the
// opened file's own metadata, not a second lookup of path.
func secretReadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("secret key file %s has mode %04o, so users other than its owner can read or change it; run: chmod 600 %s", path, perm, path)
	}
	if st.Size() != secretKeySize {
		return nil, fmt.Errorf("secret key file %s is %d bytes long, but a key is exactly %d bytes; it is not a key this server wrote, or it was damaged (restore it from a backup: without it, stored secrets cannot be decrypted)", path, st.Size(), secretKeySize)
	}
	key := make([]byte, secretKeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("secret key file %s: reading: %w", path, err)
	}
	// The file could have grown between Stat and the read.
	if n, _ := f.Read(make([]byte, 1)); n != 0 {
		return nil, fmt.Errorf("secret key file %s is longer than %d bytes", path, secretKeySize)
	}
	return key, nil
}

// secretCreateKey writes a new random key to path. It returns an error
// wrapping fs.ErrExist when path already exists (someone else won).
func secretCreateKey(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secret key directory %s: %w", dir, err)
	}
	key := make([]byte, secretKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generating the secret key: %w", err)
	}

	// os.CreateTemp opens with O_CREATE|O_EXCL and mode 0600.
	tmp, err := os.CreateTemp(dir, ".secret-key-*")
	if err != nil {
		return fmt.Errorf("creating the secret key in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := secretWriteKeyFile(tmp, key); err != nil {
		return fmt.Errorf("writing the secret key in %s: %w", dir, err)
	}
	err = os.Link(tmpName, path)
	if err == nil || errors.Is(err, fs.ErrExist) {
		if err == nil {
			secretSyncDir(dir)
		}
		return err
	}

	// No hard links here (some network or FUSE file systems): create path
	// itself exclusively. A concurrent reader could then see the file before
	// it is complete and refuse it for its size; restarting fixes that.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err // fs.ErrExist when another process won
	}
	if err := secretWriteKeyFile(f, key); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing the secret key file %s: %w", path, err)
	}
	secretSyncDir(dir)
	return nil
}

// secretWriteKeyFile writes key to f, syncs it to disk and closes f.
func secretWriteKeyFile(f *os.File, key []byte) error {
	if _, err := f.Write(key); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// secretSyncDir makes a new directory entry durable, best effort.
func secretSyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// secretAAD is the additional data for a secret's value at rest: it binds the
// ciphertext to its owner and normalized name. owner is e.g. "repo:12" or
// "org:3"; the result looks like "repo:12:DEPLOY_KEY".
func secretAAD(owner, name string) []byte {
	return []byte(owner + ":" + name)
}

func secretGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != secretKeySize {
		return nil, fmt.Errorf("secret key must be %d bytes, not %d", secretKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// secretSealAD is the GCM additional data: the version byte, then aad, so
// neither can be changed without the open failing.
func secretSealAD(version byte, aad []byte) []byte {
	ad := make([]byte, 0, 1+len(aad))
	ad = append(ad, version)
	return append(ad, aad...)
}

// secretSeal encrypts plaintext under the server key. The result is
// version (1 byte) || nonce (12 bytes) || AES-256-GCM ciphertext and tag;
// it is 29 bytes longer than plaintext. aad is not stored: secretOpen must be
// given the same aad, normally secretAAD(owner, name).
func secretSeal(key, aad, plaintext []byte) ([]byte, error) {
	gcm, err := secretGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+secretNonceSize, 1+secretNonceSize+len(plaintext)+gcm.Overhead())
	out[0] = secretSealV1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("generating a nonce: %w", err)
	}
	return gcm.Seal(out, out[1:], plaintext, secretSealAD(secretSealV1, aad)), nil
}

// secretOpen decrypts what secretSeal made with the same key and aad. A
// ciphertext that was altered, made under another key, or stored for another
// owner or name gives an error, never wrong plaintext.
func secretOpen(key, aad, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) == 0 {
		return nil, errors.New("encrypted secret is empty")
	}
	if v := ciphertext[0]; v != secretSealV1 {
		return nil, fmt.Errorf("encrypted secret has format version %d, and this server knows only version %d", v, secretSealV1)
	}
	gcm, err := secretGCM(key)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < 1+secretNonceSize+gcm.Overhead() {
		return nil, fmt.Errorf("encrypted secret is %d bytes long, too short to be one", len(ciphertext))
	}
	nonce := ciphertext[1 : 1+secretNonceSize]
	plain, err := gcm.Open(nil, nonce, ciphertext[1+secretNonceSize:], secretSealAD(secretSealV1, aad))
	if err != nil {
		return nil, errors.New("encrypted secret does not open: it was altered, sealed under another server key, or belongs to another secret")
	}
	return plain, nil
}

// secretNewBoxKey makes an X25519 key pair for a repository's secrets API
// (GET /repos/{owner}/{repo}/actions/secrets/public-key answers with pub).
// Store priv sealed with secretSeal, never in the clear.
func secretNewBoxKey() (pub, priv *[32]byte, err error) {
	pub, priv, err = box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating a secrets key pair: %w", err)
	}
	return pub, priv, nil
}

// secretBoxKeyID is the key_id the public-key endpoint reports and clients
// echo back with each encrypted value. GitHub's key_id is a string of
// decimal digits (its documented example is "012345678912345678"); go-github
// reads it as a string (and tolerates a number), PyGithub and gh pass it
// through as a string. Ours is 18 digits, never with a leading zero, derived
// from SHA-256 of the public key: stable across restarts without being
// stored, different when the key is rotated, and it survives a client that
// parses it into an int64 and prints it back.
func SecretBoxKeyID(pub *[32]byte) string {
	sum := sha256.Sum256(pub[:])
	const lo, span = 100_000_000_000_000_000, 900_000_000_000_000_000 // [1e17, 1e18)
	n := lo + binary.BigEndian.Uint64(sum[:8])%span
	return strconv.FormatUint(n, 10)
}

// secretBoxPublicKey is the "key" field of the public-key endpoint: the
// public key in standard base64 with padding, as GitHub sends it.
func SecretBoxPublicKey(pub *[32]byte) string {
	return base64.StdEncoding.EncodeToString(pub[:])
}

// secretOpenSealedBox decodes and opens an encrypted_value a client sent: the
// standard base64 of a libsodium sealed box (crypto_box_seal) to pub. Check
// the key_id the client sent against secretBoxKeyID(pub) first, so a client
// holding a rotated-out key gets a clear answer, and the plaintext with
// secretCheckValue after.
func SecretOpenSealedBox(encryptedB64 string, pub, priv *[32]byte) ([]byte, error) {
	s := strings.TrimSpace(encryptedB64)
	// Bound the work before decoding: the largest acceptable box holds a
	// secretValueMax value.
	if max := base64.StdEncoding.EncodedLen(SecretValueMax + box.AnonymousOverhead); len(s) > max {
		return nil, fmt.Errorf("encrypted_value is %d characters long, more than a %d-byte secret encrypts to (%d)", len(s), SecretValueMax, max)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Tolerate clients that drop the padding.
		raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return nil, errors.New("encrypted_value is not valid base64")
		}
	}
	if len(raw) < box.AnonymousOverhead {
		return nil, fmt.Errorf("encrypted_value decodes to %d bytes, but a sealed box is at least %d bytes long", len(raw), box.AnonymousOverhead)
	}
	plain, ok := box.OpenAnonymous(nil, raw, pub, priv)
	if !ok {
		return nil, errors.New("encrypted_value does not open with this repository's key: encrypt it as a libsodium sealed box to the key from the public-key endpoint (a rotated key needs a fresh fetch)")
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// secretCheckName applies GitHub's rules to a secret (or variable) name and
// returns it normalized to upper case: names are case-insensitive, so
// "deploy_key" and "DEPLOY_KEY" are the same secret.
func secretCheckName(name string) (string, error) {
	if name == "" {
		return "", errors.New("secret name is empty")
	}
	if len(name) > secretNameMax {
		return "", fmt.Errorf("secret name is %d characters long; the limit is %d", len(name), secretNameMax)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "", fmt.Errorf("secret name %q contains %q: names may contain only letters A-Z, digits 0-9 and underscores", name, secretRuneAt(name, i))
		}
	}
	if '0' <= name[0] && name[0] <= '9' {
		return "", fmt.Errorf("secret name %q starts with a digit; names must start with a letter or underscore", name)
	}
	upper := strings.ToUpper(name)
	if strings.HasPrefix(upper, "GITHUB_") {
		return "", fmt.Errorf("secret name %q starts with GITHUB_, a prefix reserved for names GitHub Actions sets itself", name)
	}
	return upper, nil
}

// secretRuneAt is the character starting at byte i of s, for messages.
func secretRuneAt(s string, i int) string {
	for _, r := range s[i:] {
		return string(r)
	}
	return ""
}

// secretCheckValue applies the limits on a secret's value: at most 48 KiB
// (GitHub's limit) and no NUL byte, which no environment variable can carry.
// An empty value is allowed, as GitHub's API allows it.
func SecretCheckValue(v []byte) error {
	if len(v) > SecretValueMax {
		return fmt.Errorf("secret value is %d bytes long; the limit is %d bytes (48 KiB)", len(v), SecretValueMax)
	}
	for i, c := range v {
		if c == 0 {
			return fmt.Errorf("secret value contains a NUL byte (at byte %d), which cannot be passed in an environment variable", i)
		}
	}
	return nil
}
