package api

import (
	"net/http"
	"time"
)

// metaRoutes are about the API and the caller themselves.
func (a *API) metaRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Pattern: Prefix + "/openapi.json", Summary: "the OpenAPI 3.1 document of this API",
			Rule: Public(), Handle: a.openAPI},
		{Method: http.MethodGet, Pattern: Prefix + "/me", Summary: "the signed-in caller",
			Rule: SignedIn(), Handle: a.me},
	}
}

func (a *API) openAPI(w http.ResponseWriter, _ *http.Request, _ *Call) error {
	doc, err := Document()
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	_, err = w.Write(doc)
	return err
}

// Me is the caller as the API sees them.
type Me struct {
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name,omitempty"`
	Groups      []string  `json:"groups"`
	Method      string    `json:"method"`
	MFA         bool      `json:"mfa"`
	Scopes      []string  `json:"scopes,omitempty"`
	CSRFToken   string    `json:"csrf_token,omitempty"`
	LastLoginAt time.Time `json:"last_login_at,omitzero"`
}

func (a *API) me(w http.ResponseWriter, r *http.Request, c *Call) error {
	p := c.Principal
	m := Me{Username: p.User.Username, DisplayName: p.User.DisplayName, Groups: p.User.Groups, Method: p.Method,
		MFA: p.Subject.MFA, LastLoginAt: p.User.LastLoginAt}
	if m.Groups == nil {
		m.Groups = []string{}
	}
	for _, s := range p.Subject.TokenScope {
		m.Scopes = append(m.Scopes, string(s))
	}
	if p.Cookie && a.d.CSRF != nil {
		m.CSRFToken = a.d.CSRF.TokenFor(r)
	}
	return WriteJSON(w, http.StatusOK, m)
}
