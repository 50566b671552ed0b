package api

// sessionRoutes are the session endpoints.
func (a *API) sessionRoutes() []Route { return nil }
