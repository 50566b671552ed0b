package api

// datasetRoutes are the dataset endpoints.
func (a *API) datasetRoutes() []Route { return nil }
