package api

// runRoutes are the run endpoints.
func (a *API) runRoutes() []Route { return nil }
