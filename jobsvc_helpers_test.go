package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Test helpers the jobsvc package's tests have too, for the root's tests of the same services.

func artifactSHA(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func artifactDo(t *testing.T, method, u string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

const artifactSvc = "github.actions.results.api.v1.ArtifactService"

// artifactUpload uploads data to a signed URL as BlockBlobClient.uploadStream
// does: blocks of size chunk (staged in reverse to prove the list orders
// them), then the block list.
func artifactUpload(t *testing.T, signed string, data []byte, chunk int) {
	t.Helper()
	var ids []string
	n := (len(data) + chunk - 1) / chunk
	for i := n - 1; i >= 0; i-- {
		end := min((i+1)*chunk, len(data))
		id := artifactBlockID(i)
		resp, b := artifactDo(t, "PUT", signed+"&comp=block&blockid="+url.QueryEscape(id), map[string]string{"x-ms-version": "2023-11-03"}, data[i*chunk:end])
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT comp=block %d: status = %d, want 201 (%s)", i, resp.StatusCode, b)
		}
	}
	for i := 0; i < n; i++ {
		ids = append(ids, artifactBlockID(i))
	}
	resp, b := artifactDo(t, "PUT", signed+"&comp=blocklist", map[string]string{"Content-Type": "application/xml"}, artifactBlockListXML(ids))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT comp=blocklist: status = %d, want 201 (%s)", resp.StatusCode, b)
	}
}

func artifactBlockListXML(ids []string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><BlockList>`)
	for _, id := range ids {
		fmt.Fprintf(&b, "<Latest>%s</Latest>", id)
	}
	b.WriteString("</BlockList>")
	return b.Bytes()
}

func artifactBlockID(i int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%08d-block-id-prefix", i)))
}

// twirp posts a Twirp JSON request as the toolkit does and decodes the body.
func artifactTwirp(t *testing.T, base, service, method, tok string, body map[string]any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+"/twirp/"+service+"/"+method, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", method, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: body %q is not JSON", method, raw)
	}
	return resp.StatusCode, out
}

const cacheSvc = "github.actions.results.api.v1.CacheService"

// artifactIDs is what the toolkit puts in every request: the backend ids
// it read from the token's scp claim.
func artifactIDs(tok string) (run, job string) {
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var c struct{ Scp string }
	json.Unmarshal(b, &c)
	for _, sc := range strings.Split(c.Scp, " ") {
		if p := strings.Split(sc, ":"); p[0] == "Actions.Results" && len(p) == 3 {
			return p[1], p[2]
		}
	}
	return "", ""
}

func artifactPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}
