package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// S3 URLs presigned with signature version 2 — AWSAccessKeyId, Expires
// and Signature query parameters, an HMAC-SHA1 — are what boto3's
// generate_presigned_url still makes for S3 unless the client is
// configured with signature_version "s3v4". Only presigned S3 requests
// are accepted this way; header-signed requests must use SigV4.

// v2SubResources are the query parameters that are part of a version 2
// canonical resource.
var v2SubResources = []string{
	"acl", "cors", "delete", "lifecycle", "location", "logging", "notification", "partNumber", "policy",
	"requestPayment", "response-cache-control", "response-content-disposition", "response-content-encoding",
	"response-content-language", "response-content-type", "response-expires", "restore", "tagging",
	"torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
}

// IsPresignedV2 reports whether a raw query string carries a version 2
// presigned signature.
func IsPresignedV2(rawQuery string) bool {
	return strings.Contains(rawQuery, "AWSAccessKeyId=") && strings.Contains(rawQuery, "Signature=")
}

// VerifyPresignedV2 checks an S3 request presigned with signature version
// 2. The body is not signed. A URL may be valid for at most
// MaxPresignExpiry from now.
func (v *Verifier) VerifyPresignedV2(req *Request) error {
	var keyID, sig, expires string
	var sub [][2]string
	rest := string(req.Query)
	for rest != "" {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		rk, rv, hasValue := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(rk)
		val, err2 := url.QueryUnescape(rv)
		if err1 != nil || err2 != nil {
			return fail(Malformed, "presigned query is badly escaped")
		}
		var dst *string
		switch k {
		case "AWSAccessKeyId":
			dst = &keyID
		case "Signature":
			dst = &sig
		case "Expires":
			dst = &expires
		default:
			if slices.Contains(v2SubResources, k) {
				if hasValue {
					sub = append(sub, [2]string{k, "=" + val})
				} else {
					sub = append(sub, [2]string{k, ""})
				}
			}
			continue
		}
		if *dst != "" || val == "" {
			return fail(Malformed, "presigned query needs AWSAccessKeyId, Expires and Signature, once each")
		}
		*dst = val
	}
	if keyID == "" || sig == "" || expires == "" {
		return fail(Malformed, "presigned query needs AWSAccessKeyId, Expires and Signature, once each")
	}
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil {
		return fail(Malformed, "Expires must be a number of seconds since the epoch")
	}
	sec, ok := v.keys[keyID]
	if !ok {
		return errUnknown
	}
	now := v.now()
	if now.Unix() > exp {
		return errExpired
	}
	if time.Unix(exp, 0).Sub(now) > MaxPresignExpiry {
		return fail(Malformed, "Expires must be at most seven days from now")
	}
	want, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(want) != sha1.Size {
		return errMismatch
	}

	var b strings.Builder
	b.Write(req.Method)
	b.WriteByte('\n')
	b.Write(req.HeaderValue("Content-MD5"))
	b.WriteByte('\n')
	b.Write(req.HeaderValue("Content-Type"))
	b.WriteByte('\n')
	b.WriteString(expires)
	b.WriteByte('\n')
	// x-amz-* headers, lower case, sorted, values of one name joined.
	var amz []string
	for _, f := range req.Header {
		name := strings.ToLower(string(f.Name))
		if strings.HasPrefix(name, "x-amz-") && !slices.Contains(amz, name) {
			amz = append(amz, name)
		}
	}
	slices.Sort(amz)
	for _, name := range amz {
		b.WriteString(name)
		b.WriteByte(':')
		first := true
		for _, f := range req.Header {
			if equalFold(f.Name, name) {
				if !first {
					b.WriteByte(',')
				}
				first = false
				b.Write(appendTrimmed(nil, f.Value))
			}
		}
		b.WriteByte('\n')
	}
	path := string(req.Path)
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	slices.SortFunc(sub, func(x, y [2]string) int { return strings.Compare(x[0], y[0]) })
	for i, s := range sub {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(s[0])
		b.WriteString(s[1])
	}
	m := hmac.New(sha1.New, sec.kSecret[len("AWS4"):])
	m.Write([]byte(b.String()))
	if subtle.ConstantTimeCompare(m.Sum(nil), want) != 1 {
		return errMismatch
	}
	return nil
}
