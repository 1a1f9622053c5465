package app

import (
	"errors"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/google"
)

// The google source type (Google Workspace through the Admin SDK Directory API) registers
// itself here, so the factory map in app.go stays the one list of pull source types.
func init() {
	sourceFactories[configs.SourceGoogle] = func(a *App, sc configs.SourceConfig, opts Options) (reconcile.Source, error) {
		if sc.Google == nil {
			return nil, errors.New("type google without a google block")
		}
		r := opts.SourceRetry
		return google.New(sc.Name, *sc.Google, google.Options{
			Metrics: a.Metrics, HTTPClient: opts.HTTPClient, Logger: a.Log,
			RetryMax: r.Max, RetryWaitMin: r.WaitMin, RetryWaitMax: r.WaitMax, MaxRetryAfter: r.MaxRetryAfter,
		})
	}
}
