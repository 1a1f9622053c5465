// Package simulation is a deterministic, seeded simulation of the whole of idsync, in the
// spirit of FoundationDB's simulation testing and TigerBeetle's VOPR, at this system's
// scale: one seed draws a history of an identity provider and a Jira site, runs it against
// the real code, checks named invariants after every pass, and can be replayed exactly.
//
// # What runs
//
// The real wiring (internal/app, as `idsync run` builds it): the Runner, mapping, planner,
// guards, executor and journal, the bbolt state file, the Jira sink against the jiratest
// simulator, and one IdP's source (below): the miniOrange source against the miniorangetest
// simulator with the SCIM listener, which receives pushes as real HTTP requests; the Google
// Workspace source against the googletest simulator; or the LDAP source against a real
// slapd. Everything is served on 127.0.0.1 inside the test process, on a virtual clock
// (Clock): a Retry-After of a minute costs no time. Passes run one at a time with
// Runner.RunOnce; Jira and the IdP see one request at a time; SCIM debounce timers fire when
// the driver says (timers).
//
// # IdPs
//
// Each seed's world runs one IdP (idp.go), chosen by the seed from a stream of its own
// (IdPFor: miniOrange for about three seeds in four, Google Workspace for about one in six,
// LDAP for about one in ten), or by Options.IdP (IDSYNC_SIM_IDP=miniorange|google|ldap). Every
// change the history makes to people, groups and status goes through the IdP simulator's
// control API, as an admin would make it in the IdP's console: miniorangetest's Hire, Leave,
// Move, Rename, Disable, ...; googletest's Hire, Delete, SetSuspended, SetArchived, SetName,
// AddGroup, DeleteGroup, AddMember, RemoveMember; LDAP adds, modifies and deletes as the
// directory's administrator. The generator draws only what the IdP can do (capabilities):
// Google and LDAP cannot push, so every change waits for the next pull, and a Google primary
// email is also the userName (which the model keeps fixed), so Google worlds draw no email
// change.
//
// LDAP worlds share one slapd per test process (idp_ldap.go): the first LDAP world starts it
// (about a second), each world loads its org over LDAP into a subtree of its own and reads it
// through a TCP proxy of its own (the proxy carries the world's faults), and TestMain stops
// it (StopLDAP). On a machine without slapd an LDAP seed fails with an error wrapping
// ldaptest.ErrUnavailable, which the tests report as not run, unless IDSYNC_REQUIRE_SLAPD=1
// (CI), where it is a failure.
//
// # What happens
//
// A history (history.go, generator.go, scenario.go; the IdP it changes in model.go) is drawn
// from the seed before anything runs: a modest org (20 to 40 people, 5 to 8 groups, three
// mapped groups, one of them onto a second product's access group), a site with a site admin, an app account, a customer, accounts no source knows and
// some people's accounts already there, and maybe a group Jira never lets idsync remove
// anyone from (403). Then steps: hires, leavers (one or many), moves, renames, email changes,
// disables and enables, group creates and deletes; each told to idsync by the next pull, by
// a SCIM push (creates, PATCHes, DELETEs, active:false), or by a push sent while a pass reads
// the users listing; admins' edits in Jira by hand (accounts created, unmanaged and manual
// memberships, managed memberships taken away, accounts deleted); approvals of held plans,
// some before the IdP changes again; config reloads of thresholds (0 included), grace and
// mappings. Scenarios chain steps that only together matter: a pushed delete followed by a
// push about the person's group before any pull, and a mass disable held by the breaker,
// approved, then half undone while as many others are disabled.
//
// The history runs twice: once without faults (the twin) and once with faults drawn from a
// second stream (faults.go, crash.go): on Jira, 500/502/503, 429 storms, connection resets
// before and after the change was made (unknown outcome), cut-off answers, search-index lag,
// removals from one group failing all pass; on miniOrange, error statuses and bodies, resets,
// cut-off and shifted pages, a totalCount that lies (a little, or beyond any directory), a
// user record without its status, an unreadable SCIM push store; on Google, 5xx, resets,
// cut-off answers, 403 rateLimitExceeded / userRateLimitExceeded and 429 (through
// googletest's fault knob), a listing page failing on every attempt, a user record without
// suspended and archived; on LDAP, every connection cut in the middle of an answer, or
// refused; and crashes: at a pass's
// first journal write, or just before or after its Nth Jira change, after which the app is
// closed and opened again on the same state file and a startup pass runs. Which request a
// fault hits is a hash of seed, pass, request and attempt, never arrival order, so the same
// seed makes the same run.
//
// # Invariants
//
// After every pass (invariants.go, pass.go):
//
//   - I1 nothing-unowned-changed: accounts no source knows (site admin, app, customers,
//     accounts made by hand) are never written; no account or group is deleted; no
//     membership of an unmanaged group is removed, and one idsync did not add only as a
//     step of deprovisioning that person.
//   - I2 leavers-lose-access: a person disabled or gone at every source holds no product
//     access after K = grace_passes + 1 complete fault-free passes that held nothing.
//   - I3 no-removal-on-incomplete-read: a pass whose read was incomplete (as idsync says,
//     or as the armed faults make certain), or a targeted pass, removes and deactivates
//     nothing, except for people an explicit deprovision push named.
//   - I4 access-only-for-the-active: no account is created, re-enabled or given product
//     access unless data the pass could be working from says the person is active (the
//     oracle, oracle.go, keeps what each pull read and every push said, apart from idsync).
//   - I5 breaker-limits: no pass deactivates or removes more than the breaker allows (a
//     threshold of 0 holds every one), apart from the items an approval covered exactly;
//     counted from the pass's plan and, independently, from accounts Jira saw lose access.
//   - I6 converges-like-fault-free: no account or group ever exists twice; after the faults
//     stop, fault-free passes (approving what the breaker holds) settle within
//     grace_passes + 8 passes on the end state of the twin (memberships of groups the
//     mapping stopped managing aside: idsync leaves those alone, whatever reached them).
//   - I7 audit-written-ahead: every change idsync made in Jira had its write-ahead audit
//     record on disk when the request arrived, and every such record got an outcome once
//     the world settled.
//   - I8 no-removal-the-idp-still-grants: no membership the IdP grants before and after a
//     pass is removed by it.
//   - I9 reads-sized-by-what-arrived: a listing's claimed count never makes a read hold
//     more goroutines than a bound.
//
// # Running and replaying
//
// TestSimulation runs a fixed set of seeds in `make test` (two of them Google worlds, two
// LDAP worlds), TestRegressionSeeds the seeds that caught real defects (on miniOrange, where
// they caught them), and TestDeterministic one seed twice (same step log, same end state). A failure prints its seed, step, pass, invariant and a short description, and
// the line that replays it alone, with its step log (IDSYNC_SIM_LOG=1 prints the log of a
// passing seed too):
//
//	IDSYNC_SIM_SEED=<seed> go test -run TestSimulation ./internal/simulation/
//
// IDSYNC_SIM_SEEDS=N runs N seeds from IDSYNC_SIM_START (default 1) on parallel workers
// (IDSYNC_SIM_PARALLEL, default three per core) and prints a summary: seeds, steps, passes,
// invariant checks, faults, crashes, the slowest seed, and each failure with its replay
// line; IDSYNC_SIM_IDP runs every seed on one IdP; IDSYNC_SIM_STATE_DIR puts the state
// files elsewhere than the temp dir;
// IDSYNC_SIM_HUGE_COUNT lowers the count a lying listing claims (to replay a seed against
// code that sizes memory by the claim without taking the machine down).
//
// `make simulate SEEDS=N` (default 1000) does that without -race, with the state files on
// /dev/shm when it exists; `make simulate SEEDS=1 SEED=<seed>` replays one seed.
package simulation
