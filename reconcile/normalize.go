package reconcile

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizeUserName trims surrounding whitespace and brings the name to Unicode NFC, so that
// the same name typed on two systems compares equal. Names that are empty, not UTF-8 or carry
// control characters are refused: they cannot be shown or matched safely.
func normalizeUserName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("user name is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("user name is empty")
	}
	s = norm.NFC.String(s)
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", errors.New("user name contains a control character")
		}
	}
	return s, nil
}

// normalizeEmail trims an address and checks its shape. It is deliberately simpler than RFC
// 5322 (no display names, comments or quoted local parts): Jira accepts plain addresses only.
// An empty input gives "" without error.
func normalizeEmail(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("email is not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || at == len(s)-1 {
		return "", errors.New("email " + quote(s) + " is not an address")
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", errors.New("email " + quote(s) + " has no valid domain")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`<>()[],;:"\`, r) {
			return "", errors.New("email " + quote(s) + " contains a character addresses cannot hold")
		}
	}
	return norm.NFC.String(s), nil
}

// lower is strings.ToLower, which returns its input without allocating when it has no upper
// case letters (the common case for emails and group names).
func lower(s string) string { return strings.ToLower(s) }

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}
