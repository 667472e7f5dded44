package core

// Error is a decision the core made against a request, in OAuth terms: an
// error code from RFC 6749 §5.2 / RFC 6750 §3.1 / RFC 7009 and a human
// description. Front doors render it in their own dialect; Status is the
// HTTP status Keycloak uses for it, which a door may follow or override.
type Error struct {
	Code        string
	Description string
	Status      int
	// RetryAfter, in seconds, accompanies a 429.
	RetryAfter int
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// OAuth error codes.
const (
	InvalidRequest       = "invalid_request"
	InvalidClient        = "invalid_client"
	InvalidGrant         = "invalid_grant"
	UnauthorizedClient   = "unauthorized_client"
	UnsupportedGrantType = "unsupported_grant_type"
	InvalidScope         = "invalid_scope"
	InvalidToken         = "invalid_token"
	InsufficientScope    = "insufficient_scope"
	UnsupportedTokenType = "unsupported_token_type"
	AccessDenied         = "access_denied"
	TooManyRequests      = "too_many_requests"
	NotFound             = "not_found"
	ServerError          = "server_error"
)

func errf(status int, code, desc string) *Error {
	return &Error{Code: code, Description: desc, Status: status}
}
