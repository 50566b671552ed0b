package api

// pipelineRoutes are the pipeline endpoints.
func (a *API) pipelineRoutes() []Route { return nil }
