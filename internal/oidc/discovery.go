package oidc

import (
	"github.com/gatehouse/gatehouse/internal/store"
	"net/http"
)

// discovery is OpenID Connect Discovery 1.0 §3 for one realm, with the
// endpoint set Keycloak advertises for what gatehouse serves.
func (h *Handler) discovery(w http.ResponseWriter, r *http.Request) {
	realm := h.realmName(r)
	v, err := h.core.Realm(r.Context(), realm)
	if err != nil {
		writeError(w, realmError(err))
		return
	}
	iss := h.core.Issuer(realm)
	oc := iss + "/protocol/openid-connect"
	algs := []string{"RS256", "PS256", "ES256", "EdDSA"}
	authMethods := []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt"}
	doc := map[string]any{
		"issuer":                                                   iss,
		"authorization_endpoint":                                   oc + "/auth",
		"token_endpoint":                                           oc + "/token",
		"introspection_endpoint":                                   oc + "/token/introspect",
		"userinfo_endpoint":                                        oc + "/userinfo",
		"end_session_endpoint":                                     oc + "/logout",
		"revocation_endpoint":                                      oc + "/revoke",
		"jwks_uri":                                                 oc + "/certs",
		"grant_types_supported":                                    []string{"authorization_code", "password", "client_credentials", "refresh_token"},
		"response_types_supported":                                 []string{"code"},
		"response_modes_supported":                                 []string{"query", "fragment", "form_post"},
		"code_challenge_methods_supported":                         []string{"plain", "S256"},
		"prompt_values_supported":                                  []string{"none", "login"},
		"authorization_response_iss_parameter_supported":           true,
		"subject_types_supported":                                  []string{"public"},
		"id_token_signing_alg_values_supported":                    algs,
		"userinfo_signing_alg_values_supported":                    []string{"none"},
		"introspection_endpoint_auth_methods_supported":            authMethods,
		"introspection_endpoint_auth_signing_alg_values_supported": append(algs, "HS256"),
		"token_endpoint_auth_methods_supported":                    authMethods,
		"token_endpoint_auth_signing_alg_values_supported":         append(algs, "HS256"),
		"revocation_endpoint_auth_methods_supported":               authMethods,
		"claims_supported": []string{"aud", "sub", "iss", "auth_time", "name", "given_name", "family_name",
			"preferred_username", "email", "email_verified", "acr", "azp", "sid", "nonce", "organization"},
		"claim_types_supported":                      []string{"normal"},
		"claims_parameter_supported":                 false,
		"scopes_supported":                           scopeNames(v.Settings.ClientScopes),
		"backchannel_logout_supported":               false,
		"frontchannel_logout_supported":              false,
		"request_parameter_supported":                false,
		"request_uri_parameter_supported":            false,
		"require_request_uri_registration":           false,
		"tls_client_certificate_bound_access_tokens": false,
	}
	w.Header().Set("Cache-Control", "no-cache")
	// Public metadata: any page may read it (keycloak-js, oidc-client-ts).
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, doc)
}

func scopeNames(defined []store.ClientScope) []string {
	out := []string{"openid"}
	if len(defined) == 0 {
		return append(out, "profile", "email", "roles", "web-origins", "acr", "basic",
			"offline_access", "address", "phone", "microprofile-jwt", "organization")
	}
	for _, s := range defined {
		out = append(out, s.Name)
	}
	return out
}

// realmInfo is Keycloak's GET /realms/R: the realm's name and where its
// services are, which some adapters read at start-up.
func (h *Handler) realmInfo(w http.ResponseWriter, r *http.Request) {
	realm := h.realmName(r)
	v, err := h.core.Realm(r.Context(), realm)
	if err != nil {
		writeError(w, realmError(err))
		return
	}
	iss := h.core.Issuer(realm)
	writeJSON(w, http.StatusOK, map[string]any{
		"realm":             v.Name,
		"token-service":     iss + "/protocol/openid-connect",
		"account-service":   iss + "/account",
		"tokens-not-before": v.Settings.NotBefore,
	})
}
