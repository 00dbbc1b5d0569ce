package objstore

import (
	"fmt"
	"net"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the longest object key, in bytes, as on S3.
const MaxKeyLen = 1024

// ValidateBucketName returns an error wrapping ErrInvalidName unless name
// follows the S3 bucket naming rules: 3 to 63 characters of lower-case
// letters, digits, dots and hyphens, starting and ending with a letter or
// digit, without two adjacent dots, not formatted as an IP address.
func ValidateBucketName(name string) error {
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("%w: bucket name %q must be 3 to 63 characters long", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isLowerAlnum(c) || c == '.' || c == '-') {
			return fmt.Errorf("%w: bucket name %q may hold only lower-case letters, digits, dots and hyphens", ErrInvalidName, name)
		}
	}
	if !isLowerAlnum(name[0]) || !isLowerAlnum(name[len(name)-1]) {
		return fmt.Errorf("%w: bucket name %q must start and end with a letter or digit", ErrInvalidName, name)
	}
	if strings.Contains(name, "..") {
		return fmt.Errorf("%w: bucket name %q has two adjacent dots", ErrInvalidName, name)
	}
	if net.ParseIP(name) != nil {
		return fmt.Errorf("%w: bucket name %q is formatted as an IP address", ErrInvalidName, name)
	}
	return nil
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// ValidateKey returns an error wrapping ErrInvalidName unless key is 1 to
// MaxKeyLen bytes of valid UTF-8.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty object key", ErrInvalidName)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: object key is %d bytes long, more than %d", ErrInvalidName, len(key), MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: object key is not valid UTF-8", ErrInvalidName)
	}
	return nil
}
