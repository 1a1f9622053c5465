package jiratest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// --- response helpers ----------------------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// errorCollection is Jira's error body (ErrorCollection).
type errorCollection struct {
	ErrorMessages []string          `json:"errorMessages"`
	Errors        map[string]string `json:"errors"`
}

func writeJira(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, errorCollection{ErrorMessages: msgs, Errors: map[string]string{}})
}

func writeJiraField(w http.ResponseWriter, status int, field, msg string) {
	writeJSON(w, status, errorCollection{ErrorMessages: []string{}, Errors: map[string]string{field: msg}})
}

// jsmError is JSM's error body (ErrorResponse).
type jsmError struct {
	ErrorMessage     string  `json:"errorMessage"`
	I18nErrorMessage i18nMsg `json:"i18nErrorMessage"`
}

type i18nMsg struct {
	I18nKey    string   `json:"i18nKey"`
	Parameters []string `json:"parameters"`
}

func writeJSM(w http.ResponseWriter, status int, key, msg string) {
	writeJSON(w, status, jsmError{ErrorMessage: msg, I18nErrorMessage: i18nMsg{I18nKey: key, Parameters: []string{}}})
}

func writeFamily(w http.ResponseWriter, fam family, status int, msg string) {
	switch fam {
	case famJSM:
		writeJSM(w, status, "sd.error."+strconv.Itoa(status), msg)
	case famAdmin:
		writeJSON(w, status, map[string]any{"key": strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "")), "message": msg})
	case famOrg:
		writeOrgError(w, status, strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_")), msg)
	default:
		writeJira(w, status, msg)
	}
}

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }

func baseURL(r *http.Request) string { return "http://" + r.Host }

// badParam is a parameter error worded as the API words it (a sentence, shown to clients).
type badParam string

func (b badParam) Error() string { return string(b) }

// intParam reads a non-negative integer query parameter.
func intParam(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badParam(fmt.Sprintf("The value '%s' is invalid for the parameter '%s'.", v, name))
	}
	return n, nil
}

func boolParam(q url.Values, name string, def bool) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badParam(fmt.Sprintf("The value '%s' is invalid for the parameter '%s'.", v, name))
	}
	return b, nil
}

// paging reads startAt/maxResults, capping maxResults at cap (Jira echoes the cap).
func paging(q url.Values, cap int) (start, max int, err error) {
	if start, err = intParam(q, "startAt", 0); err != nil {
		return
	}
	if max, err = intParam(q, "maxResults", 50); err != nil {
		return
	}
	if max > cap {
		max = cap
	}
	return
}

func window[T any](all []T, start, max int) []T {
	if start >= len(all) {
		return []T{}
	}
	end := min(len(all), start+max)
	return all[start:end]
}

// gdprStrict answers the dead username/key parameters as Jira does.
func gdprStrict(w http.ResponseWriter, q url.Values) bool {
	for _, p := range []string{"username", "key"} {
		if q.Has(p) {
			writeJira(w, http.StatusBadRequest, "The query parameter '"+p+"' is not supported in GDPR strict mode.")
			return true
		}
	}
	return false
}

// msgNoUser is Jira's answer for an unknown (or invisible) account.
const msgNoUser = "Specified user does not exist or you do not have required permissions"

// accountIDParam reads the required accountId query parameter (GDPR strict mode: username
// and key are refused); false means an error was written.
func accountIDParam(w http.ResponseWriter, q url.Values) (string, bool) {
	if gdprStrict(w, q) {
		return "", false
	}
	id := q.Get("accountId")
	if id == "" {
		writeJira(w, http.StatusBadRequest, "The query parameter 'accountId' is required.")
		return "", false
	}
	return id, true
}

// onSite returns the account if it is on the site, else answers 404. The caller holds s.mu.
func (s *Sim) onSite(w http.ResponseWriter, id string) *account {
	a := s.st.accounts[id]
	if a == nil || !a.onSite {
		writeJira(w, http.StatusNotFound, msgNoUser)
		return nil
	}
	return a
}
