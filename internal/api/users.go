package api

// userRoutes are the user endpoints.
func (a *API) userRoutes() []Route { return nil }
