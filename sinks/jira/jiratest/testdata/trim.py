#!/usr/bin/env python3
"""Trim the vendored Atlassian OpenAPI specs to the operations the simulator serves.

Run from the repository root with the shared specs folder as the first argument:
    python3 sinks/jira/jiratest/testdata/trim.py ../shared/specs
It keeps the listed paths and methods and every component they reference, drops examples,
the long descriptions and the top-level _meta key some copies carry, and writes the
*.trimmed.json files beside this script.
"""
import json, os, re, sys

SPECS = {
    "jira-platform-v3.swagger-v3.v3.json": ("jira-platform-v3.trimmed.json", {
        "/rest/api/3/users/search": ["get"], "/rest/api/3/users": ["get"],
        "/rest/api/3/user/search": ["get"], "/rest/api/3/user": ["get", "post", "delete"],
        "/rest/api/3/user/groups": ["get"], "/rest/api/3/myself": ["get"],
        "/rest/api/3/group/bulk": ["get"], "/rest/api/3/group": ["post", "delete"],
        "/rest/api/3/group/member": ["get"], "/rest/api/3/group/user": ["post", "delete"],
        "/rest/api/3/applicationrole": ["get"],
    }),
    "jsm-servicedeskapi.swagger.v3.json": ("jsm-servicedeskapi.trimmed.json", {
        "/rest/servicedeskapi/customer": ["post"], "/rest/servicedeskapi/servicedesk": ["get"],
        "/rest/servicedeskapi/servicedesk/{serviceDeskId}": ["get"],
        "/rest/servicedeskapi/servicedesk/{serviceDeskId}/customer": ["get", "post", "delete"],
        "/rest/servicedeskapi/organization": ["get", "post"],
        "/rest/servicedeskapi/organization/{organizationId}/user": ["get", "post", "delete"],
    }),
    "admin-user-management.openapi.json": ("admin-user-management.trimmed.json", {
        "/users/{account_id}/manage/profile": ["get", "patch"],
        "/users/{account_id}/manage/email": ["put"],
        "/users/{account_id}/manage/lifecycle/disable": ["post"],
        "/users/{account_id}/manage/lifecycle/enable": ["post"],
    }),
    "admin-organizations.openapi.json": ("admin-organizations.trimmed.json", {
        "/v2/orgs/{orgId}/directories": ["get"],
        "/v2/orgs/{orgId}/directories/{directoryId}/users": ["get"],
        "/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend": ["post"],
        "/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/restore": ["post"],
    }),
}
DROP = {"example", "examples", "x-atlassian-connect-scope", "x-atlassian-oauth2-scopes",
        "x-atlassian-data-security-policy", "x-atlassian-narrative"}

def strip(o):
    if isinstance(o, dict):
        out = {}
        for k, v in o.items():
            if k in DROP:
                continue
            if k == "description" and isinstance(v, str):
                v = v.split("\n")[0][:200]
            out[k] = strip(v)
        return out
    if isinstance(o, list):
        return [strip(x) for x in o]
    return o

def refs(o, acc):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "$ref" and isinstance(v, str):
                acc.add(v)
            else:
                refs(v, acc)
    elif isinstance(o, list):
        for x in o:
            refs(x, acc)

def main(src):
    here = os.path.dirname(os.path.abspath(__file__))
    for name, (out, paths) in SPECS.items():
        spec = json.load(open(os.path.join(src, name)))
        new = {k: spec[k] for k in ("openapi", "info", "servers", "security") if k in spec}
        new["paths"] = {}
        for p, methods in paths.items():
            item = spec["paths"][p]
            new["paths"][p] = {m: item[m] for m in methods}
            if "parameters" in item:
                new["paths"][p]["parameters"] = item["parameters"]
        comps, todo, seen = {}, set(), set()
        refs(new["paths"], todo)
        while todo:
            r = todo.pop()
            if r in seen:
                continue
            seen.add(r)
            _, _, kind, key = r.split("/", 3)
            obj = spec["components"][kind][key]
            comps.setdefault(kind, {})[key] = obj
            refs(obj, todo)
        if "securitySchemes" in spec.get("components", {}):
            comps["securitySchemes"] = spec["components"]["securitySchemes"]
        new["components"] = comps
        new = strip(new)
        # The admin spec's AccountId pattern ends in a literal newline (a YAML folding slip);
        # no real id matches it, so it is dropped here.
        if "AccountId" in new["components"].get("schemas", {}):
            new["components"]["schemas"]["AccountId"].pop("pattern", None)
        json.dump(new, open(os.path.join(here, out), "w"), indent=1, sort_keys=True)
        print(out, len(new["paths"]), "paths", sum(len(v) for v in comps.values()), "components")

if __name__ == "__main__":
    main(sys.argv[1])
