package s3

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"mime/multipart"
	"strings"
	"testing"
	"time"
)

var policyNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	policyKeyID  = "AKIDPOLICY"
	policySecret = "policy-secret"
)

func policyLookup(id string) (string, bool) {
	if id == policyKeyID {
		return policySecret, true
	}
	return "", false
}

// signedForm returns the form fields for a policy document, signed as
// S3 expects, with extra fields added.
func signedForm(doc string, extra ...string) *postForm {
	cred := policyKeyID + "/20260301/us-east-1/s3/aws4_request"
	b64 := base64.StdEncoding.EncodeToString([]byte(doc))
	sig := hex.EncodeToString(hmacSHA256(signingKey(policySecret, "20260301", "us-east-1", "s3"), b64))
	f := &postForm{}
	add := func(name, value string) {
		f.fields = append(f.fields, postField{name: name, lower: strings.ToLower(name), value: value})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		add(extra[i], extra[i+1])
	}
	add("x-amz-algorithm", "AWS4-HMAC-SHA256")
	add("x-amz-credential", cred)
	add("x-amz-date", "20260301T115900Z")
	add("policy", b64)
	add("x-amz-signature", sig)
	return f
}

const sigConds = `{"x-amz-algorithm":"AWS4-HMAC-SHA256"},{"x-amz-credential":"AKIDPOLICY/20260301/us-east-1/s3/aws4_request"},{"x-amz-date":"20260301T115900Z"}`

func TestCheckPostForm(t *testing.T) {
	for _, tc := range []struct {
		name   string
		doc    string
		fields []string
		code   string // "" for accepted
	}{
		{"accepted", `{"expiration":"2026-03-01T13:00:00.000Z","conditions":[{"bucket":"b"},["starts-with","$key","in/"],` + sigConds + `]}`,
			[]string{"key", "in/a"}, ""},
		{"field names any case", `{"expiration":"2026-03-01T13:00:00Z","conditions":[["eq","$KEY","in/a"],["starts-with","$content-type","image/"],` + sigConds + `]}`,
			[]string{"Key", "in/a", "Content-Type", "image/png, image/gif"}, ""},
		{"x-ignore- fields exempt", `{"expiration":"2026-03-01T13:00:00Z","conditions":[["eq","$key","a"],` + sigConds + `]}`,
			[]string{"key", "a", "x-ignore-tracking", "1"}, ""},
		{"list of content types, one outside", `{"expiration":"2026-03-01T13:00:00Z","conditions":[["eq","$key","a"],["starts-with","$Content-Type","image/"],` + sigConds + `]}`,
			[]string{"key", "a", "Content-Type", "image/png,text/html"}, "AccessDenied"},
		{"expired", `{"expiration":"2026-03-01T11:00:00Z","conditions":[["eq","$key","a"],` + sigConds + `]}`,
			[]string{"key", "a"}, "AccessDenied"},
		{"wrong bucket", `{"expiration":"2026-03-01T13:00:00Z","conditions":[{"bucket":"c"},["eq","$key","a"],` + sigConds + `]}`,
			[]string{"key", "a"}, "AccessDenied"},
		{"condition on an absent field", `{"expiration":"2026-03-01T13:00:00Z","conditions":[["eq","$key","a"],{"acl":"private"},` + sigConds + `]}`,
			[]string{"key", "a"}, "AccessDenied"},
		{"extra field", `{"expiration":"2026-03-01T13:00:00Z","conditions":[["eq","$key","a"],` + sigConds + `]}`,
			[]string{"key", "a", "acl", "public-read"}, "AccessDenied"},
		{"signature conditions missing", `{"expiration":"2026-03-01T13:00:00Z","conditions":[["eq","$key","a"]]}`,
			[]string{"key", "a"}, "AccessDenied"},
		{"no key", `{"expiration":"2026-03-01T13:00:00Z","conditions":[` + sigConds + `]}`,
			nil, "InvalidArgument"},
		{"no expiration", `{"conditions":[["eq","$key","a"],` + sigConds + `]}`,
			[]string{"key", "a"}, "InvalidPolicyDocument"},
		{"unknown operator", `{"expiration":"2026-03-01T13:00:00Z","conditions":[["matches","$key","a"],` + sigConds + `]}`,
			[]string{"key", "a"}, "InvalidPolicyDocument"},
		{"range upside down", `{"expiration":"2026-03-01T13:00:00Z","conditions":[["content-length-range",10,1],` + sigConds + `]}`,
			[]string{"key", "a"}, "InvalidPolicyDocument"},
		{"unknown member", `{"expiration":"2026-03-01T13:00:00Z","conditions":[],"x":1}`,
			[]string{"key", "a"}, "InvalidPolicyDocument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkPostForm(signedForm(tc.doc, tc.fields...), "b", policyNow, policyLookup)
			var pe *postError
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.code != "" && (!errors.As(err, &pe) || pe.code != tc.code):
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
}

func TestCheckPostFormSignature(t *testing.T) {
	doc := `{"expiration":"2026-03-01T13:00:00Z","conditions":[["eq","$key","a"],` + sigConds + `]}`
	for _, tc := range []struct {
		name  string
		field string
		value string
		code  string
	}{
		{"no policy", "policy", "", "AccessDenied"},
		{"Signature Version 2", "x-amz-algorithm", "", "InvalidArgument"},
		{"unknown key", "x-amz-credential", "AKIDOTHER/20260301/us-east-1/s3/aws4_request", "InvalidAccessKeyId"},
		{"other service", "x-amz-credential", policyKeyID + "/20260301/us-east-1/sagemaker/aws4_request", "InvalidArgument"},
		{"date of another day", "x-amz-date", "20260302T000000Z", "InvalidArgument"},
		{"signed for another region", "x-amz-credential", policyKeyID + "/20260301/eu-west-1/s3/aws4_request", "SignatureDoesNotMatch"},
		{"bad signature", "x-amz-signature", strings.Repeat("0", 64), "SignatureDoesNotMatch"},
		{"short signature", "x-amz-signature", "abc", "SignatureDoesNotMatch"},
		{"policy changed", "policy", base64.StdEncoding.EncodeToString([]byte(strings.Replace(doc, `"a"`, `"b"`, 1))), "SignatureDoesNotMatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := signedForm(doc, "key", "a")
			for i := range f.fields {
				if f.fields[i].lower == tc.field {
					f.fields[i].value = tc.value
				}
			}
			_, err := checkPostForm(f, "b", policyNow, policyLookup)
			var pe *postError
			if !errors.As(err, &pe) || pe.code != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
}

func TestReadPostFields(t *testing.T) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("key", "a")
	mw.WriteField("Policy", "p")
	fw, _ := mw.CreateFormFile("file", "x.txt")
	fw.Write([]byte("content"))
	mw.WriteField("after", "ignored")
	mw.Close()
	form, file, err := readPostFields(multipart.NewReader(&body, mw.Boundary()), 1024)
	if err != nil || file == nil || file.FileName() != "x.txt" {
		t.Fatalf("form %v file %v err %v", form, file, err)
	}
	if form.value("policy") != "p" || form.value("key") != "a" || form.has("after") {
		t.Errorf("fields %+v", form.fields)
	}

	// Too much before the file, and a field given twice.
	for _, tc := range []struct {
		fields []string
		code   string
	}{
		{[]string{"key", strings.Repeat("k", 2000)}, "MaxPostPreDataLengthExceeded"},
		{[]string{"key", "a", "KEY", "b"}, "InvalidArgument"},
	} {
		body.Reset()
		mw := multipart.NewWriter(&body)
		for i := 0; i < len(tc.fields); i += 2 {
			mw.WriteField(tc.fields[i], tc.fields[i+1])
		}
		mw.Close()
		_, _, err := readPostFields(multipart.NewReader(&body, mw.Boundary()), 1024)
		var pe *postError
		if !errors.As(err, &pe) || pe.code != tc.code {
			t.Errorf("%v: got %v, want %s", tc.fields, err, tc.code)
		}
	}
}

// FuzzParsePostPolicy: any policy document parses or is refused with an
// error, never a panic; a parsed one is consistent.
func FuzzParsePostPolicy(f *testing.F) {
	for _, seed := range []string{
		`{"expiration":"2026-03-01T13:00:00.000Z","conditions":[{"bucket":"b"},["starts-with","$key","in/"],["content-length-range",1,10485760]]}`,
		`{"expiration":"2026-03-01T13:00:00Z","conditions":[["eq","$key","a"],{"acl":"public-read","x-amz-meta-a":"b"}]}`,
		`{"expiration":"2026-03-01T13:00:00Z","conditions":[["content-length-range","1","2"],["content-length-range",0,1e3]]}`,
		`{"expiration":"x","conditions":[]}`, `{"conditions":[]}`, `{"expiration":"2026-03-01T13:00:00Z"}`,
		`{"expiration":"2026-03-01T13:00:00Z","conditions":[[],{},[1,2,3],["eq"],["eq","key","v"],["starts-with","$",""]]}`,
		`[]`, `null`, `{"expiration":null,"conditions":null}`, `{} {}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := parsePostPolicy(doc)
		if err != nil {
			if p != nil {
				t.Fatal("a policy and an error")
			}
			return
		}
		if p.expiration.IsZero() || p.minLen < 0 || p.maxLen > maxPostFileBytes {
			t.Fatalf("inconsistent policy %+v", p)
		}
		for _, c := range p.conditions {
			if c.op != "eq" && c.op != "starts-with" || c.field != strings.ToLower(c.field) {
				t.Fatalf("condition %+v", c)
			}
		}
	})
}

// FuzzPostForm: a whole upload form (raw multipart body), checked against
// its policy signed with a known key — the signature right, so the fuzzer
// reaches the policy and its conditions. Never a panic; an accepted form
// has a key and names each of its fields in a condition.
func FuzzPostForm(f *testing.F) {
	const boundary = "fuzzboundary"
	seed := func(doc string, fields ...string) []byte {
		form := signedForm(doc, fields...)
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.SetBoundary(boundary)
		for _, fl := range form.fields {
			mw.WriteField(fl.name, fl.value)
		}
		fw, _ := mw.CreateFormFile("file", "f.txt")
		fw.Write([]byte("data"))
		mw.Close()
		return b.Bytes()
	}
	f.Add(seed(`{"expiration":"2026-03-01T13:00:00.000Z","conditions":[{"bucket":"b"},["starts-with","$key","in/"],`+sigConds+`]}`, "key", "in/${filename}"))
	f.Add(seed(`{"expiration":"2026-03-01T13:00:00.000Z","conditions":[["eq","$key","a"],["content-length-range",0,3],`+sigConds+`]}`, "key", "a", "x-ignore-z", "1"))
	f.Add([]byte("--" + boundary + "\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\nx\r\n--" + boundary + "--\r\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, body []byte) {
		form, file, err := readPostFields(multipart.NewReader(bytes.NewReader(body), boundary), maxPostFieldBytes)
		if err != nil {
			return
		}
		// Sign whatever policy the form carries, as its author would have.
		if b64 := form.value("policy"); b64 != "" {
			for i := range form.fields {
				if form.fields[i].lower == "x-amz-signature" {
					form.fields[i].value = hex.EncodeToString(hmacSHA256(signingKey(policySecret, "20260301", "us-east-1", "s3"), b64))
				}
			}
		}
		pol, err := checkPostForm(form, "b", policyNow, policyLookup)
		if err != nil {
			var pe *postError
			if !errors.As(err, &pe) || pe.status < 400 || pe.status >= 500 {
				t.Fatalf("not a client error: %v", err)
			}
			return
		}
		if !form.has("key") || pol == nil {
			t.Fatal("accepted without a key")
		}
		named := map[string]bool{}
		for _, c := range pol.conditions {
			named[c.field] = true
		}
		for _, fl := range form.fields {
			if !named[fl.lower] && fl.lower != "policy" && fl.lower != "x-amz-signature" && !strings.HasPrefix(fl.lower, "x-ignore-") {
				t.Fatalf("accepted field %q that no condition names", fl.name)
			}
		}
		if file != nil {
			if _, _, cleanup, err := spoolFile(file, pol.maxLen, t.TempDir()); err == nil {
				cleanup()
			}
		}
	})
}
