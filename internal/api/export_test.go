package api

import (
	"net/http"

	"github.com/sluicehq/sluice/internal/clock"
)

// NewForTest builds an API with only the given routes, to test New's
// checks of the route table.
func NewForTest(routes ...Route) (*API, error) {
	a := &API{d: Deps{Clock: clock.Real{}}}
	a.mux = http.NewServeMux()
	for _, rt := range routes {
		if err := a.add(rt); err != nil {
			return nil, err
		}
	}
	return a, nil
}
