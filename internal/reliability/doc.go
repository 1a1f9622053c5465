// Package reliability holds idsync's end-to-end reliability and security proofs. It has no
// production code: its tests drive the real wiring (internal/app and the Runner in-process,
// and the idsync binary as operators run it) against the Jira and miniOrange simulators served
// on 127.0.0.1 by the test process, and assert what operators and security teams rely on:
//
//   - Faults (TestFaultMatrix): 5xx, 503 with Retry-After, 429 storms, connection resets
//     (before and after the request was processed), latency spikes, cut-off bodies and
//     search-index lag at the Jira simulator; 5xx, resets, cut-off pages, error bodies,
//     shifted pages and listings whose totalCount disagrees at the miniOrange simulator. Each
//     scenario runs an initial sync and a churn with the fault armed for the first passes of
//     each, and is compared with the fault-free run of the same org and churn: every pass
//     completes or reports its failed items; later passes converge to the same end state; no
//     account or group is duplicated; no removal or deactivation is made that the fault-free
//     run did not make; no request is sent inside a Retry-After window.
//   - Crashes (TestCrash*): `idsync reconcile` is killed with SIGKILL at seeded random moments
//     of a large pass (the initial sync, or a churn with deactivations) and restarted until it
//     converges; the end state equals the uncrashed one, nothing is duplicated, and every
//     change Jira processed is matched against the audit log. A SCIM write answered 2xx by
//     `idsync run` survives a SIGKILL sent right after the answer.
//   - Source outages (TestOutage*): the source refusing connections, failing mid-pagination
//     or answering an empty directory never deactivates or removes anything (the breaker holds
//     the empty directory), and idsync_source_read_complete and /readyz say so.
//   - Hostile source data and security (TestReliability*): duplicate and malformed emails,
//     unicode and stray whitespace, a huge group, a user in thousands of groups, IdP groups
//     named like Jira's access groups; unmanaged Jira accounts never touched by a churn;
//     secrets absent from every output, log and API answer; admin and per-source SCIM tokens
//     confined to their routes; the state file private; fuzz targets for every parser of
//     outside input.
//
// The default `go test -race` run uses small orgs and a few crash trials (about a minute on
// 2 cores). IDSYNC_LONG=1 (`make reliability`) runs the full sizes: 20 crash trials on a
// 200-user org, the 100,000-member group and the user in 5,000 groups; it takes under ten
// minutes on 2 cores. IDSYNC_RELIABILITY_REPORT=path writes the figures (faults injected,
// passes to converge, duplicates, lost changes, crash trials, fuzz targets) there as JSON;
// IDSYNC_CRASH_SEED=n repeats the kill moments of a crash run.
//
// The binary under test is built without -race: started that way it costs about a second
// per command here, and these tests run it well over a hundred times; cmd/idsync's process
// tests run it with -race.
package reliability
