// Package reliability holds idsync's end-to-end reliability and security proofs. It has no
// production code: its tests drive the real wiring (internal/app and the Runner in-process,
// and the idsync binary as operators run it) against the Jira and miniOrange simulators on
// loopback, and assert what operators and security teams rely on:
//
//   - Faults (TestFaultMatrix): 5xx, 503 with Retry-After, 429 storms, connection resets,
//     latency spikes, truncated bodies and search-index lag at the Jira simulator; 5xx, resets,
//     truncated pages, error bodies and listings whose totalCount disagrees at the miniOrange
//     simulator. Every pass completes or reports its failed items; later passes converge to
//     the end state of a fault-free run; no account or group is duplicated; no removal or
//     deactivation happens that the fault-free run did not make; no request is sent inside a
//     Retry-After window.
//   - Crashes (TestCrash*): the binary is killed with SIGKILL at seeded random moments of a
//     large pass and restarted until it converges; the end state equals the uncrashed one and
//     every change Jira applied has its audit record. A SCIM write answered 2xx survives a kill.
//   - Source outages (TestOutage*): the source refusing connections, answering an empty
//     directory, or failing mid-pagination never deactivates or removes anything, and the
//     idsync_source_read_complete metric and /readyz say so.
//   - Hostile source data and security (TestReliability*): duplicate and invalid emails,
//     unicode names, huge groups, a user in thousands of groups, an IdP group named like a
//     product-access group; unmanaged Jira accounts never touched; secrets never printed; tokens
//     confined to their own routes; the state file private.
//
// The default `go test -race` run uses small orgs and a few crash trials (well under two
// minutes on 2 cores). IDSYNC_LONG=1 (`make reliability`) runs the full sizes: at least 20
// crash trials, the 100,000-member group and the user in 5,000 groups. With
// IDSYNC_RELIABILITY_REPORT=path the figures (faults injected, passes to converge,
// duplicates, lost changes, crash trials) are also written there as JSON.
package reliability
