package jira

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Sentinels callers test with errors.Is. An *APIError matches the ones its status and messages
// imply; transport failures match ErrTransient.
var (
	// ErrAlreadyExists: the object a create asked for is there already (409, or a 400 whose
	// message says so: a group name in use, an existing member, an existing customer).
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotFound: 404, or a 400 saying the object does not exist. Whether an account is
	// still in a group is never read from an error's wording (see the package documentation).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: 403, the credentials lack a permission.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized: 401, the credentials are wrong or missing.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRateLimited: 429 after every retry was spent. It is also transient.
	ErrRateLimited = errors.New("rate limited")
	// ErrTransient: worth retrying later (5xx, 429, timeouts, connection resets).
	ErrTransient = errors.New("transient failure")
	// ErrLicenseLimit: the site has no licensed seat left for another user.
	ErrLicenseLimit = errors.New("licensed-seat limit reached")
	// ErrUnsupported: the change needs something not configured (for example admin_api).
	ErrUnsupported = errors.New("not supported with this configuration")
	// ErrBadResponse: the API answered with a body idsync cannot understand.
	ErrBadResponse = errors.New("unexpected API response")
)

// APIError is a non-2xx answer of Jira, JSM or the admin API, with the messages of whichever
// error-body shape it used. It never holds credentials: only the method, the endpoint template
// and what the server said, scrubbed of the sink's credentials (current and replaced).
type APIError struct {
	Status   int
	Messages []string
	Endpoint string // path template, e.g. /rest/api/3/group/user
	Method   string
	// RetryAfter is the wait the server asked for, when it said so.
	RetryAfter string
}

func (e *APIError) Error() string {
	msg := strings.Join(e.Messages, "; ")
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d: %s", e.Method, e.Endpoint, e.Status, msg)
}

// Is maps the status and messages to the package sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrAlreadyExists:
		return e.Status == http.StatusConflict && e.Endpoint != epUsersSearch ||
			e.Status == http.StatusBadRequest && e.says("already exists", "already a member", "already used", "in use", "already associated")
	case ErrNotFound:
		return e.Status == http.StatusNotFound || e.Status == http.StatusBadRequest && e.says("does not exist")
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrTransient:
		return e.Status == http.StatusTooManyRequests || e.Status >= 500 ||
			e.Status == http.StatusConflict && e.Endpoint == epUsersSearch
	case ErrLicenseLimit:
		return e.Status == http.StatusBadRequest && e.says("licen") && e.says("exceed", "limit")
	}
	return false
}

func (e *APIError) says(subs ...string) bool {
	for _, m := range e.Messages {
		lm := strings.ToLower(m)
		for _, s := range subs {
			if strings.Contains(lm, s) {
				return true
			}
		}
	}
	return false
}

// maxErrorText bounds what an error keeps of a body that is not one of the known shapes.
const maxErrorText = 300

// parseError builds an APIError from any of the error-body shapes:
// Jira {errorMessages, errors}, JSM {errorMessage, i18nErrorMessage}, SCIM {detail, scimType},
// {error, traceId}, and the admin API's {key, context}.
func parseError(method, endpoint string, status int, body []byte) *APIError {
	e := &APIError{Status: status, Method: method, Endpoint: endpoint}
	var b struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
		ErrorMessage  string            `json:"errorMessage"`
		I18n          *struct {
			Key string `json:"i18nKey"`
		} `json:"i18nErrorMessage"`
		Detail   string `json:"detail"`
		SCIMType string `json:"scimType"`
		Error    any    `json:"error"`
		TraceID  string `json:"traceId"`
		Key      string `json:"key"`
		Message  string `json:"message"`
		Context  *struct {
			FieldViolations []struct {
				Field      string `json:"field"`
				Violations []struct {
					Key string `json:"key"`
				} `json:"violations"`
			} `json:"fieldViolations"`
		} `json:"context"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		if t := strings.TrimSpace(string(body)); t != "" && !strings.HasPrefix(t, "<") {
			e.Messages = append(e.Messages, truncate(t, maxErrorText))
		}
		return e
	}
	e.Messages = append(e.Messages, b.ErrorMessages...)
	fields := make([]string, 0, len(b.Errors))
	for f := range b.Errors {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		e.Messages = append(e.Messages, f+": "+b.Errors[f])
	}
	if b.ErrorMessage != "" {
		e.Messages = append(e.Messages, b.ErrorMessage)
	} else if b.I18n != nil && b.I18n.Key != "" {
		e.Messages = append(e.Messages, b.I18n.Key)
	}
	if b.Detail != "" {
		m := b.Detail
		if b.SCIMType != "" {
			m = b.SCIMType + ": " + m
		}
		e.Messages = append(e.Messages, m)
	}
	switch v := b.Error.(type) {
	case string:
		m := v
		if b.TraceID != "" {
			m += " (traceId " + b.TraceID + ")"
		}
		e.Messages = append(e.Messages, m)
	case map[string]any:
		if m, ok := v["message"].(string); ok {
			e.Messages = append(e.Messages, m)
		}
	}
	if b.Key != "" {
		m := b.Key
		if b.Message != "" {
			m += ": " + b.Message
		}
		if b.Context != nil {
			for _, fv := range b.Context.FieldViolations {
				for _, v := range fv.Violations {
					m += " (" + fv.Field + ": " + v.Key + ")"
				}
			}
		}
		e.Messages = append(e.Messages, m)
	} else if b.Message != "" {
		e.Messages = append(e.Messages, b.Message)
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
