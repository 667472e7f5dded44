package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/store"
)

// route is one compiled operation: the policy the gateway applies to the
// requests it matches and where it sends them.
type route struct {
	op      store.Operation
	pattern string
	// target is nil when the operation's upstream is not a usable URL; the
	// route still matches (so that a broken private route never falls
	// through to a less specific public one) and answers 502.
	target  *url.URL
	scopes  []string
	timeout int // seconds
}

// node is one path segment of the routing tree. Matching tries the literal
// child first, then the parameter child, then the wildcard, backtracking
// when a deeper segment fails: so the most specific pattern wins, compared
// segment by segment from the left.
type node struct {
	literal map[string]*node
	param   *node
	// methods are the routes ending at this node, by upper-case method;
	// "*" is the route that accepts every method.
	methods map[string]*route
	// wildcard holds the routes whose pattern ends in "*" here.
	wildcard map[string]*route
}

// router is the compiled operation table of one realm configuration.
type router struct {
	root node
}

// errPattern reports an operation path the gateway cannot route.
var errPattern = errors.New("gateway: invalid operation path")

// splitPattern checks an operation path and returns its segments.
func splitPattern(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%w %q: must start with /", errPattern, p)
	}
	// "/" is one empty segment, as is the last of "/a/": a trailing slash
	// is significant, as it is to most upstreams.
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		switch {
		case s == "*":
			if i != len(segs)-1 {
				return nil, fmt.Errorf("%w %q: * only as the last segment", errPattern, p)
			}
		case strings.HasPrefix(s, "{"):
			if !strings.HasSuffix(s, "}") || len(s) < 3 || strings.ContainsAny(s[1:len(s)-1], "{}*") {
				return nil, fmt.Errorf("%w %q: bad parameter segment %q", errPattern, p, s)
			}
		case strings.ContainsAny(s, "{}*"):
			return nil, fmt.Errorf("%w %q: bad segment %q", errPattern, p, s)
		case s == "" && i != len(segs)-1:
			return nil, fmt.Errorf("%w %q: empty segment", errPattern, p)
		}
	}
	return segs, nil
}

func normMethod(m string) string {
	m = strings.ToUpper(strings.TrimSpace(m))
	if m == "" {
		return "*"
	}
	return m
}

// add inserts r; it reports false when an operation with the same method
// and pattern is already present (the first one configured wins).
func (rt *router) add(method string, segs []string, r *route) bool {
	n := &rt.root
	wild := len(segs) > 0 && segs[len(segs)-1] == "*"
	if wild {
		segs = segs[:len(segs)-1]
	}
	for _, s := range segs {
		if strings.HasPrefix(s, "{") {
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		}
		if n.literal == nil {
			n.literal = map[string]*node{}
		}
		c := n.literal[s]
		if c == nil {
			c = &node{}
			n.literal[s] = c
		}
		n = c
	}
	table := &n.methods
	if wild {
		table = &n.wildcard
	}
	if *table == nil {
		*table = map[string]*route{}
	}
	if _, dup := (*table)[method]; dup {
		return false
	}
	(*table)[method] = r
	return true
}

func pick(table map[string]*route, method string) *route {
	if r, ok := table[method]; ok {
		return r
	}
	if method == "HEAD" {
		if r, ok := table["GET"]; ok {
			return r
		}
	}
	return table["*"]
}

// match finds the most specific route for method and an already cleaned
// path. It does not allocate.
func (rt *router) match(method, path string) *route {
	if len(path) == 0 || path[0] != '/' {
		return nil
	}
	return matchNode(&rt.root, method, path[1:])
}

// matchNode matches rest, the path after the segments consumed so far.
func matchNode(n *node, method, rest string) *route {
	seg, tail, more := strings.Cut(rest, "/")
	if !more {
		// seg is the last segment.
		if c := n.literal[seg]; c != nil {
			if r := pick(c.methods, method); r != nil {
				return r
			}
			if r := pick(c.wildcard, method); r != nil {
				return r // "/files/*" also matches "/files"
			}
		}
		if n.param != nil && seg != "" {
			if r := pick(n.param.methods, method); r != nil {
				return r
			}
			if r := pick(n.param.wildcard, method); r != nil {
				return r
			}
		}
		return pick(n.wildcard, method)
	}
	if c := n.literal[seg]; c != nil {
		if r := matchNode(c, method, tail); r != nil {
			return r
		}
	}
	if n.param != nil && seg != "" {
		if r := matchNode(n.param, method, tail); r != nil {
			return r
		}
	}
	return pick(n.wildcard, method)
}

// Validate checks a realm's gateway configuration: every operation path
// must be routable and every upstream an absolute http or https URL. The
// gateway itself tolerates a bad operation (it logs it and answers 502 or
// skips it), so an admin API can call this to refuse the configuration up
// front.
func Validate(g *store.Gateway) error {
	if g == nil {
		return nil
	}
	switch g.OrgFrom {
	case "", "header":
	case "subdomain":
		if g.Domain == "" {
			return errors.New("gateway: orgFrom subdomain needs a domain")
		}
	default:
		return fmt.Errorf("gateway: orgFrom %q: want header or subdomain", g.OrgFrom)
	}
	var errs []error
	for i, op := range g.Operations {
		if _, err := splitPattern(op.Path); err != nil {
			errs = append(errs, fmt.Errorf("operation %d: %w", i, err))
		}
		if _, err := parseUpstream(op.Upstream); err != nil {
			errs = append(errs, fmt.Errorf("operation %d: %w", i, err))
		}
		if op.TimeoutSeconds < 0 {
			errs = append(errs, fmt.Errorf("operation %d: negative timeoutSeconds", i))
		}
	}
	return errors.Join(errs...)
}

func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("gateway: upstream %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("gateway: upstream %q: want an absolute http or https URL", s)
	}
	return u, nil
}
