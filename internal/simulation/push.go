package simulation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The IdP's SCIM client: real HTTP requests to idsync's listener, in miniOrange's dialect
// (PATCH with paths, members[value eq "..."] removals).

func (w *world) scimDo(method, path string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.SCIMURL+"/scim/v2/"+sourceName+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+scimToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := w.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("SCIM %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("SCIM %s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out, nil
}

func patchOps(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
}

// pushUser provisions p over SCIM if the IdP never did (with p as it is now), else sends
// what changed. It reports whether the user was created.
func (w *world) pushUser(p *person) (bool, error) {
	w.mu.Lock()
	_, ok := w.scimUsers[strings.ToLower(p.UserName)]
	w.mu.Unlock()
	if ok {
		return false, nil
	}
	out, err := w.scimDo(http.MethodPost, "/Users", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    p.UserName,
		"name":        map[string]any{"givenName": p.First, "familyName": p.Last},
		"displayName": p.First + " " + p.Last,
		"emails":      []any{map[string]any{"value": p.Email, "type": "work", "primary": true}},
		"active":      p.Status == active,
	})
	if err != nil {
		return false, err
	}
	id, _ := out["id"].(string)
	if id == "" {
		return false, fmt.Errorf("SCIM POST /Users for %s: no id in the answer", p.UserName)
	}
	w.mu.Lock()
	w.scimUsers[strings.ToLower(p.UserName)] = id
	w.mu.Unlock()
	return true, nil
}

func (w *world) scimUserID(p *person) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.scimUsers[strings.ToLower(p.UserName)]
}

func (w *world) pushPatchUser(p *person, ops ...map[string]any) error {
	_, err := w.scimDo(http.MethodPatch, "/Users/"+w.scimUserID(p), patchOps(ops...))
	return err
}

func (w *world) pushDeleteUser(p *person) error {
	_, err := w.scimDo(http.MethodDelete, "/Users/"+w.scimUserID(p), nil)
	return err
}

// pushGroupID returns the SCIM id of an IdP group, creating the group over SCIM first.
func (w *world) pushGroupID(name string) (string, error) {
	w.mu.Lock()
	id, ok := w.scimGroups[name]
	w.mu.Unlock()
	if ok {
		return id, nil
	}
	out, err := w.scimDo(http.MethodPost, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": name,
	})
	if err != nil {
		return "", err
	}
	id, _ = out["id"].(string)
	w.mu.Lock()
	w.scimGroups[name] = id
	w.mu.Unlock()
	return id, nil
}

func (w *world) pushMember(group string, p *person, add bool) error {
	gid, err := w.pushGroupID(group)
	if err != nil {
		return err
	}
	uid := w.scimUserID(p)
	op := map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": uid, "display": p.UserName}}}
	if !add {
		op = map[string]any{"op": "remove", "path": `members[value eq "` + uid + `"]`}
	}
	_, err = w.scimDo(http.MethodPatch, "/Groups/"+gid, patchOps(op))
	return err
}

func (w *world) pushDeleteGroup(name string) error {
	w.mu.Lock()
	id, ok := w.scimGroups[name]
	delete(w.scimGroups, name)
	w.mu.Unlock()
	if !ok {
		return nil
	}
	_, err := w.scimDo(http.MethodDelete, "/Groups/"+id, nil)
	return err
}
