package app_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPresignedV2NotReplayableOnVirtualHost: a signature version 2 URL
// signs the path but not the Host, so the URL presigned for /aaa/k must not
// reach bucket "victim" when sent with Host victim.localhost (the path
// would then be read as victim's key "aaa/k").
func TestPresignedV2NotReplayableOnVirtualHost(t *testing.T) {
	s := startAuthServer(t)
	s.upload(t, "aaa", "k", []byte("bucket aaa"))
	s.upload(t, "victim", "aaa/k", []byte("victim's"))
	expires := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	mac := hmac.New(sha1.New, []byte(testSecret))
	io.WriteString(mac, "GET\n\n\n"+expires+"\n/aaa/k")
	q := url.Values{"AWSAccessKeyId": {testKeyID}, "Expires": {expires}, "Signature": {base64.StdEncoding.EncodeToString(mac.Sum(nil))}}
	get := func(host string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, s.url+"/aaa/k?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get(""); status != 200 || body != "bucket aaa" {
		t.Fatalf("path-style V2 URL: %d %q", status, body)
	}
	port := s.url[strings.LastIndexByte(s.url, ':'):]
	if status, body := get("victim.localhost" + port); status == 200 || strings.Contains(body, "victim's") {
		t.Fatalf("V2 URL replayed on a virtual host: %d %q", status, body)
	}
}
