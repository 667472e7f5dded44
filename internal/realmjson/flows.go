package realmjson

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/store"
)

// flowKeys are the realm fields the session limits are read from. They are
// kept verbatim in Settings.Extra: gatehouse interprets one execution of
// them, and the rest must survive an export.
var flowKeys = []string{"authenticationFlows", "authenticatorConfig", "directGrantFlow"}

const (
	requirementDisabled = "DISABLED"
	// newFlowAlias names the direct-grant flow Export writes when a realm
	// has session limits but no flows to put them in.
	newFlowAlias = "gatehouse direct grant"
	// newConfigAlias names the authenticator config Export adds when the
	// limit execution has none.
	newConfigAlias = "gatehouse session limits"
)

type execution struct {
	path          string
	authenticator string
	config        string
	flowAlias     string
	requirement   string
}

// sessionLimits finds the user-session-limits execution of the realm's
// direct-grant flow (or of a sub-flow it includes) and reads its config.
// Disabled executions and disabled sub-flows do not count, as in Keycloak.
func (p *parser) sessionLimits(top *object, out *Parsed) error {
	var direct string
	top.str("directGrantFlow", &direct)
	if top.err != nil {
		return top.err
	}
	// Flows are kept verbatim in Extra, so their unread fields are not
	// reported as unknown: a scratch parser collects them.
	q := &parser{}
	flows := map[string][]execution{}
	if raw, ok := top.get("authenticationFlows"); ok {
		list, err := array("authenticationFlows", raw)
		if err != nil {
			return err
		}
		for i, raw := range list {
			path := indexPath("authenticationFlows", i)
			o, err := q.object(path, raw)
			if err != nil {
				return err
			}
			var alias string
			o.str("alias", &alias)
			eraw, hasExec := o.get("authenticationExecutions")
			if o.err != nil {
				return o.err
			}
			var execs []execution
			if hasExec {
				epath := keyPath(path, "authenticationExecutions")
				el, err := array(epath, eraw)
				if err != nil {
					return err
				}
				for j, raw := range el {
					e := execution{path: indexPath(epath, j)}
					eo, err := q.object(e.path, raw)
					if err != nil {
						return err
					}
					eo.str("authenticator", &e.authenticator)
					eo.str("authenticatorConfig", &e.config)
					eo.str("flowAlias", &e.flowAlias)
					eo.str("requirement", &e.requirement)
					if eo.err != nil {
						return eo.err
					}
					execs = append(execs, e)
				}
			}
			flows[alias] = execs
		}
	}
	configs := map[string]*object{}
	if raw, ok := top.get("authenticatorConfig"); ok {
		list, err := array("authenticatorConfig", raw)
		if err != nil {
			return err
		}
		for i, raw := range list {
			path := indexPath("authenticatorConfig", i)
			o, err := q.object(path, raw)
			if err != nil {
				return err
			}
			var alias string
			o.str("alias", &alias)
			craw, _ := o.get("config")
			if o.err != nil {
				return o.err
			}
			co, err := q.object(keyPath(path, "config"), craw)
			if err != nil {
				return err
			}
			configs[alias] = co
		}
	}
	if direct == "" {
		return nil
	}
	e, ok := findLimits(flows, direct, map[string]bool{})
	if !ok || e.config == "" {
		return nil
	}
	co, ok := configs[e.config]
	if !ok {
		return &PathError{Path: keyPath(e.path, "authenticatorConfig"), Msg: fmt.Sprintf("no authenticatorConfig with alias %q", e.config)}
	}
	l := &store.SessionLimits{Behavior: store.DenyNewSession}
	for key, dst := range map[string]*int{"userRealmLimit": &l.RealmLimit, "userClientLimit": &l.ClientLimit} {
		var v string
		if co.str(key, &v) && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return &PathError{Path: keyPath(co.path, key), Msg: "expected a non-negative integer in a string"}
			}
			*dst = n
		}
	}
	var behavior string
	if co.str("behavior", &behavior) && behavior != "" {
		if behavior != store.DenyNewSession && behavior != store.TerminateOldestSession {
			return &PathError{Path: keyPath(co.path, "behavior"), Msg: fmt.Sprintf("expected %q or %q", store.DenyNewSession, store.TerminateOldestSession)}
		}
		l.Behavior = behavior
	}
	co.str("errorMessage", &l.ErrorMessage)
	if co.err != nil {
		return co.err
	}
	out.Realm.Settings.SessionLimits = l
	return nil
}

// findLimits walks a flow depth first, as Keycloak runs it, and returns the
// first enabled user-session-limits execution.
func findLimits(flows map[string][]execution, alias string, seen map[string]bool) (execution, bool) {
	if seen[alias] {
		return execution{}, false
	}
	seen[alias] = true
	for _, e := range flows[alias] {
		if e.requirement == requirementDisabled {
			continue
		}
		if e.authenticator == sessionLimitsProvider {
			return e, true
		}
		if e.flowAlias != "" {
			if found, ok := findLimits(flows, e.flowAlias, seen); ok {
				return found, true
			}
		}
	}
	return execution{}, false
}

// exportFlows returns the flow fields of extra, copied and edited so that
// parsing them gives limits back: the active limit execution's config is
// updated, one is added when missing, and with no limits any active limit
// execution is disabled. extra itself is not changed.
func exportFlows(extra map[string]any, limits *store.SessionLimits) (flows, configs []any, direct string, err error) {
	if err := deepCopy(extra["authenticationFlows"], &flows); err != nil {
		return nil, nil, "", fmt.Errorf("realmjson: authenticationFlows in Extra: %w", err)
	}
	if err := deepCopy(extra["authenticatorConfig"], &configs); err != nil {
		return nil, nil, "", fmt.Errorf("realmjson: authenticatorConfig in Extra: %w", err)
	}
	direct, _ = extra["directGrantFlow"].(string)

	byAlias := map[string]map[string]any{}
	for _, f := range flows {
		if fm, ok := f.(map[string]any); ok {
			if a, ok := fm["alias"].(string); ok {
				byAlias[a] = fm
			}
		}
	}
	find := func() map[string]any {
		if direct == "" {
			return nil
		}
		return findLimitsAny(byAlias, direct, map[string]bool{})
	}

	if limits == nil {
		// Each pass disables the first active execution; a flow can
		// hold several.
		for e := find(); e != nil; e = find() {
			e["requirement"] = requirementDisabled
		}
		return flows, configs, direct, nil
	}

	configByAlias := func(alias string) map[string]any {
		for _, c := range configs {
			if cm, ok := c.(map[string]any); ok && cm["alias"] == alias {
				return cm
			}
		}
		return nil
	}
	addConfig := func() string {
		alias := newConfigAlias
		for i := 2; configByAlias(alias) != nil; i++ {
			alias = newConfigAlias + " " + strconv.Itoa(i)
		}
		configs = append(configs, map[string]any{"alias": alias, "config": map[string]any{}})
		return alias
	}

	var alias string
	if e := find(); e != nil {
		alias, _ = e["authenticatorConfig"].(string)
		if alias == "" || configByAlias(alias) == nil {
			if alias == "" {
				alias = addConfig()
				e["authenticatorConfig"] = alias
			} else {
				configs = append(configs, map[string]any{"alias": alias, "config": map[string]any{}})
			}
		}
	} else {
		alias = addConfig()
		limitExec := map[string]any{
			"authenticator":       sessionLimitsProvider,
			"authenticatorConfig": alias,
			"authenticatorFlow":   false,
			"requirement":         "REQUIRED",
			"userSetupAllowed":    false,
		}
		if f := byAlias[direct]; direct != "" && f != nil {
			execs, _ := f["authenticationExecutions"].([]any)
			prio := 0.0
			for _, e := range execs {
				if em, ok := e.(map[string]any); ok {
					if v, ok := em["priority"].(float64); ok && v > prio {
						prio = v
					}
				}
			}
			limitExec["priority"] = prio + 10
			f["authenticationExecutions"] = append(execs, limitExec)
		} else {
			name := newFlowAlias
			for i := 2; byAlias[name] != nil; i++ {
				name = newFlowAlias + " " + strconv.Itoa(i)
			}
			limitExec["priority"] = 30.0
			flows = append(flows, map[string]any{
				"alias":       name,
				"description": "Direct grant with session limits",
				"providerId":  "basic-flow",
				"topLevel":    true,
				"builtIn":     false,
				"authenticationExecutions": []any{
					map[string]any{"authenticator": "direct-grant-validate-username", "authenticatorFlow": false, "requirement": "REQUIRED", "priority": 10.0, "userSetupAllowed": false},
					map[string]any{"authenticator": "direct-grant-validate-password", "authenticatorFlow": false, "requirement": "REQUIRED", "priority": 20.0, "userSetupAllowed": false},
					limitExec,
				},
			})
			direct = name
		}
	}
	cm := configByAlias(alias)
	cfg, _ := cm["config"].(map[string]any)
	if cfg == nil {
		cfg = map[string]any{}
		cm["config"] = cfg
	}
	// A key is written only where its absence would read differently, so
	// that an export of an imported realm gives back the same config.
	set := func(key, value, absent string) {
		if _, ok := cfg[key]; ok || value != absent {
			cfg[key] = value
		}
	}
	set("userRealmLimit", strconv.Itoa(limits.RealmLimit), "0")
	set("userClientLimit", strconv.Itoa(limits.ClientLimit), "0")
	set("behavior", limits.Behavior, store.DenyNewSession)
	set("errorMessage", limits.ErrorMessage, "")
	return flows, configs, direct, nil
}

func findLimitsAny(flows map[string]map[string]any, alias string, seen map[string]bool) map[string]any {
	if seen[alias] {
		return nil
	}
	seen[alias] = true
	f := flows[alias]
	execs, _ := f["authenticationExecutions"].([]any)
	for _, e := range execs {
		em, ok := e.(map[string]any)
		if !ok || em["requirement"] == requirementDisabled {
			continue
		}
		if em["authenticator"] == sessionLimitsProvider {
			return em
		}
		if sub, ok := em["flowAlias"].(string); ok && sub != "" {
			if found := findLimitsAny(flows, sub, seen); found != nil {
				return found
			}
		}
	}
	return nil
}

// deepCopy copies v into dst through JSON, which also turns values of any
// Go type into the generic shapes ([]any, map[string]any) edited here.
func deepCopy(v any, dst any) error {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}
