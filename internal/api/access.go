package api

// accessRoutes are the access endpoints.
func (a *API) accessRoutes() []Route { return nil }
