package api

// auditRoutes are the audit endpoints.
func (a *API) auditRoutes() []Route { return nil }
