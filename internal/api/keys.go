package api

// keyRoutes are the key endpoints.
func (a *API) keyRoutes() []Route { return nil }
