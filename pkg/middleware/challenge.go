package middleware

import "strings"

// Challenge is an RFC 6750 §3 WWW-Authenticate challenge of the Bearer
// scheme. Handler writes one with every 401 and 403; a service that
// refuses a request itself (a scope only one handler needs, say) answers
// with the same kind of challenge, so that clients see one format.
type Challenge struct {
	// Realm is the protection space (RFC 7235 §2.2).
	Realm string
	// Error is the RFC 6750 §3.1 code: invalid_request, invalid_token or
	// insufficient_scope.
	Error string
	// Description is error_description, for the developer, not the user.
	Description string
	// Scope lists the scopes the resource needs, separated by spaces.
	Scope string
}

// String formats c as the value of a WWW-Authenticate header, realm,
// error, error_description and scope in that order; an empty field is left
// out. Every value is a quoted-string: quote and backslash are escaped and
// a character RFC 6750 §3 does not allow there becomes "?", so a value
// taken from a token or a request cannot break the header.
func (c Challenge) String() string {
	var sb strings.Builder
	sb.WriteString("Bearer")
	sep := " "
	for _, p := range [...]struct{ name, value string }{
		{"realm", c.Realm}, {"error", c.Error}, {"error_description", c.Description}, {"scope", c.Scope},
	} {
		if p.value == "" {
			continue
		}
		sb.WriteString(sep)
		sb.WriteString(p.name)
		sb.WriteString(`="`)
		writeQuoted(&sb, p.value)
		sb.WriteByte('"')
		sep = ", "
	}
	return sb.String()
}

// writeQuoted writes s as the inside of a quoted-string: RFC 6750 §3
// allows only %x20-21 / %x23-5B / %x5D-7E in its values, so quote and
// backslash are escaped and anything else outside printable ASCII becomes
// "?".
func writeQuoted(sb *strings.Builder, s string) {
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(c)
		case c < 0x20 || c > 0x7e:
			sb.WriteByte('?')
		default:
			sb.WriteRune(c)
		}
	}
}
