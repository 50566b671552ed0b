package api

// secretRoutes are the secret endpoints.
func (a *API) secretRoutes() []Route { return nil }
