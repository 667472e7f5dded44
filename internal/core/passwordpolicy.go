package core

import (
	"context"
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// commonPasswordList is refused whatever the realm's policy says: a
// password that heads every guessing list protects nothing, and NIST SP
// 800-63B §5.1.1.2 asks verifiers to refuse such passwords.
//
//go:embed commonpasswords.txt
var commonPasswordList string

// commonPasswords is built once from the embedded list; it is read-only
// after init, so it is not mutable state.
var commonPasswords = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, line := range strings.Split(commonPasswordList, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[strings.ToLower(line)] = struct{}{}
	}
	return m
}()

// IsCommonPassword reports whether pw (compared case-insensitively) is on
// the embedded list of common passwords.
func IsCommonPassword(pw string) bool {
	_, ok := commonPasswords[strings.ToLower(pw)]
	return ok
}

// InvalidPassword is Keycloak's error code for a password its policy
// refuses.
const InvalidPassword = "invalidPasswordMessage"

// DefaultPasswordPolicy applies to self-registration in a realm that sets
// no passwordPolicy: a portal open to the internet should not take
// "abc" as a password just because nobody configured a policy.
const DefaultPasswordPolicy = "length(8) and notUsername and notEmail"

// maxPasswordBytes bounds any password a user may set, whatever the
// policy, so that hashing cost and storage stay bounded.
const maxPasswordBytes = 1024

// PasswordPolicy is a parsed Keycloak passwordPolicy string, e.g.
// "length(8) and notUsername(undefined) and digits(1)".
type PasswordPolicy struct {
	rules []policyRule
}

type policyRule struct {
	name string
	n    int
	re   *regexp.Regexp
}

// Policies that constrain how a password is stored or when it expires,
// not what it may be; registration has nothing to check for them.
var storagePolicies = map[string]bool{
	"hashAlgorithm": true, "hashIterations": true, "passwordHistory": true,
	"forceExpiredPasswordChange": true, "passwordAge": true, "notRecentlyUsed": true,
	"notRecentlyUsedInDays": true,
}

// ParsePasswordPolicy reads Keycloak's policy syntax. It is lenient, as a
// realm's policy must never make registration fail outright: a rule with
// an unreadable argument uses Keycloak's default for it, and an unknown
// rule or an invalid regexPattern is skipped. The error, when not nil,
// names what was skipped or defaulted, for an admin API to show.
func ParsePasswordPolicy(s string) (PasswordPolicy, error) {
	var p PasswordPolicy
	var problems []string
	for _, part := range splitPolicy(s) {
		name, arg, hasArg := strings.Cut(part, "(")
		name = strings.TrimSpace(name)
		if hasArg {
			arg = strings.TrimSuffix(strings.TrimSpace(arg), ")")
		}
		num := func(def int) int {
			if !hasArg || arg == "" || arg == "undefined" {
				return def
			}
			n, err := strconv.Atoi(strings.TrimSpace(arg))
			if err != nil || n < 0 {
				problems = append(problems, fmt.Sprintf("%s: %q is not a number; using %d", name, arg, def))
				return def
			}
			return n
		}
		switch name {
		case "length":
			p.rules = append(p.rules, policyRule{name: name, n: num(8)})
		case "maxLength":
			p.rules = append(p.rules, policyRule{name: name, n: num(64)})
		case "digits", "upperCase", "lowerCase", "specialChars":
			p.rules = append(p.rules, policyRule{name: name, n: num(1)})
		case "notUsername", "notEmail", "notContainsUsername", "passwordBlacklist":
			p.rules = append(p.rules, policyRule{name: name})
		case "regexPattern":
			// Keycloak matches the whole password (Matcher.matches).
			re, err := regexp.Compile(`^(?:` + arg + `)$`)
			if err != nil {
				problems = append(problems, fmt.Sprintf("regexPattern: %v; rule skipped", err))
				continue
			}
			p.rules = append(p.rules, policyRule{name: name, re: re})
		default:
			if !storagePolicies[name] {
				problems = append(problems, fmt.Sprintf("unknown policy %q skipped", name))
			}
		}
	}
	if len(problems) > 0 {
		return p, fmt.Errorf("password policy: %s", strings.Join(problems, "; "))
	}
	return p, nil
}

// splitPolicy splits on " and " outside parentheses (a regexPattern may
// contain the word).
func splitPolicy(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
			}
		case ' ':
			if depth == 0 && strings.HasPrefix(s[i:], " and ") {
				if t := strings.TrimSpace(s[start:i]); t != "" {
					out = append(out, t)
				}
				i += len(" and ") - 1
				start = i + 1
			}
		}
	}
	if t := strings.TrimSpace(s[start:]); t != "" {
		out = append(out, t)
	}
	return out
}

// Check returns why pw fails the policy for this username and email, in
// Keycloak's wording, one reason per failed rule (nil: it passes). The
// common-password list applies whatever the policy.
func (p PasswordPolicy) Check(username, email, pw string) []string {
	var why []string
	if len(pw) > maxPasswordBytes {
		return []string{fmt.Sprintf("maximum length %d bytes", maxPasswordBytes)}
	}
	var digits, upper, lower, special int
	for _, r := range pw {
		switch {
		case unicode.IsDigit(r):
			digits++
		case unicode.IsUpper(r):
			upper++
		case unicode.IsLower(r):
			lower++
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			special++
		}
	}
	n := utf8.RuneCountInString(pw)
	lpw := strings.ToLower(pw)
	for _, r := range p.rules {
		switch r.name {
		case "length":
			if n < r.n {
				why = append(why, fmt.Sprintf("minimum length %d", r.n))
			}
		case "maxLength":
			if n > r.n {
				why = append(why, fmt.Sprintf("maximum length %d", r.n))
			}
		case "digits":
			if digits < r.n {
				why = append(why, fmt.Sprintf("must contain at least %d numerical digits", r.n))
			}
		case "upperCase":
			if upper < r.n {
				why = append(why, fmt.Sprintf("must contain at least %d upper case characters", r.n))
			}
		case "lowerCase":
			if lower < r.n {
				why = append(why, fmt.Sprintf("must contain at least %d lower case characters", r.n))
			}
		case "specialChars":
			if special < r.n {
				why = append(why, fmt.Sprintf("must contain at least %d special characters", r.n))
			}
		case "notUsername":
			if username != "" && lpw == strings.ToLower(username) {
				why = append(why, "must not be equal to the username")
			}
		case "notContainsUsername":
			if username != "" && strings.Contains(lpw, strings.ToLower(username)) {
				why = append(why, "must not contain the username")
			}
		case "notEmail":
			if email != "" && lpw == strings.ToLower(email) {
				why = append(why, "must not be equal to the email")
			}
		case "regexPattern":
			if !r.re.MatchString(pw) {
				why = append(why, "fails to match the required pattern")
			}
		}
	}
	// passwordBlacklist needs no case: the common list applies always.
	if IsCommonPassword(pw) {
		why = append(why, "too common, it is on the list of most used passwords")
	}
	return why
}

// CheckPasswordPolicy checks pw against realm's passwordPolicy (or
// DefaultPasswordPolicy when the realm sets none) and the common-password
// list. The error's description says every reason it fails.
func (s *Service) CheckPasswordPolicy(ctx context.Context, realm, username, email, pw string) error {
	v, e := s.activeRealm(ctx, realm)
	if e != nil {
		return e
	}
	if e := v.checkPasswordPolicy(username, email, pw); e != nil {
		return e
	}
	return nil
}

func (v *realmView) checkPasswordPolicy(username, email, pw string) *Error {
	src := v.r.Settings.PasswordPolicy
	if strings.TrimSpace(src) == "" {
		src = DefaultPasswordPolicy
	}
	p, _ := ParsePasswordPolicy(src)
	if why := p.Check(username, email, pw); len(why) > 0 {
		return errf(400, InvalidPassword, "Invalid password: "+strings.Join(why, "; ")+".")
	}
	return nil
}
