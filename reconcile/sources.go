package reconcile

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// sourceRead is what a pass knows about one source.
type sourceRead struct {
	spec  SourceSpec
	name  string
	dir   Directory
	have  bool // dir is usable (fresh, or a stored snapshot)
	fresh bool // read completely in this pass
	run   SourceRun
	warns []Warning
	// pushErr is set when the pushes of a pulled-and-pushed source could not be read: the
	// source is then unusable for the pass, targeted or not.
	pushErr string
}

// HashDirectory is the sha256 of the directory's canonical JSON (users by key, groups by key,
// each user's groups sorted), so an unchanged source hashes the same whatever its order.
func HashDirectory(d Directory) string {
	c := Directory{Source: d.Source, Users: slices.Clone(d.Users), Groups: slices.Clone(d.Groups)}
	for i := range c.Users {
		g := slices.Clone(c.Users[i].Groups)
		slices.Sort(g)
		c.Users[i].Groups = g
	}
	slices.SortFunc(c.Users, func(a, b User) int { return strings.Compare(a.Key+"\x00"+a.UserName, b.Key+"\x00"+b.UserName) })
	slices.SortFunc(c.Groups, func(a, b Group) int { return strings.Compare(a.Key+"\x00"+a.Name, b.Key+"\x00"+b.Name) })
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(c) // maps (Attributes) encode with sorted keys
	return hex.EncodeToString(h.Sum(nil))
}

// readFull reads every source concurrently (or only o.Source), falling back to the last stored
// snapshot of any source that fails or is not read.
func (r *Runner) readFull(ctx context.Context, o RunOptions, now time.Time) []*sourceRead {
	reads := make([]*sourceRead, len(r.cfg.Sources))
	var wg sync.WaitGroup
	for i, spec := range r.cfg.Sources {
		sr := &sourceRead{spec: spec, name: spec.Source.Name()}
		sr.run.Name = sr.name
		reads[i] = sr
		if o.Source != "" && o.Source != sr.name {
			r.fromStore(ctx, sr, "not read: pass limited to source "+o.Source)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.readOne(ctx, sr, now, o.DryRun)
		}()
	}
	wg.Wait()
	return reads
}

func (r *Runner) readOne(ctx context.Context, sr *sourceRead, now time.Time, dryRun bool) {
	dir, err := sr.spec.Source.Snapshot(ctx)
	if err == nil {
		err = checkDirectory(sr.name, &dir)
	}
	if err != nil {
		r.fromStore(ctx, sr, err.Error())
		r.obs.SourceRead(sr.run)
		return
	}
	sr.dir, sr.have, sr.fresh = dir, true, true
	sr.run.Complete = true
	sr.run.Users, sr.run.Groups = len(dir.Users), len(dir.Groups)
	sr.run.Hash = HashDirectory(dir)
	taken := now
	if !dryRun {
		if err := r.cfg.Store.PutSnapshot(SnapshotRecord{Source: sr.name, Taken: now, Hash: sr.run.Hash, Directory: dir}); err != nil {
			r.log.Error().Err(err).Str("source", sr.name).Msg("storing the source snapshot failed; the pass goes on")
		}
	}
	r.obs.SourceRead(sr.run)
	r.overlayPush(ctx, sr, taken)
}

// fromStore stands the last stored snapshot in for a source.
func (r *Runner) fromStore(ctx context.Context, sr *sourceRead, why string) {
	snap, err := r.cfg.Store.Snapshot(sr.name)
	switch {
	case err == nil:
		sr.dir, sr.have = snap.Directory, true
		sr.dir.Source = sr.name
		sr.run.Users, sr.run.Groups, sr.run.Hash = len(snap.Directory.Users), len(snap.Directory.Groups), snap.Hash
		r.overlayPush(ctx, sr, snap.Taken)
	case errors.Is(err, ErrNotFound):
		why = strings.TrimPrefix(why+"; no stored snapshot", "; ")
		if sr.spec.Push != nil {
			r.overlayPush(ctx, sr, time.Time{})
		}
	default:
		why = strings.TrimPrefix(why+"; reading its stored snapshot: "+err.Error(), "; ")
	}
	if why != "" {
		sr.run.Error = why
	}
}

// overlayPush lays the pushes of a pulled-and-pushed source over its pull.
func (r *Runner) overlayPush(ctx context.Context, sr *sourceRead, taken time.Time) {
	if sr.spec.Push == nil {
		return
	}
	push, err := sr.spec.Push.Snapshot(ctx)
	if err != nil {
		// A push not read may be a deprovision (a DELETE or active:false newer than the
		// pull): the pull alone would undo it. The source's people keep their Jira state.
		sr.pushErr = "reading pushes: " + err.Error()
		sr.dir, sr.have, sr.fresh = Directory{Source: sr.name}, false, false
		sr.run.Complete = false
		sr.run.Error = strings.TrimPrefix(sr.run.Error+"; "+sr.pushErr, "; ")
		return
	}
	var w []Warning
	sr.dir, w = Overlay(sr.dir, taken, push)
	sr.dir.Source = sr.name
	sr.have = true
	sr.warns = append(sr.warns, w...)
}

// checkDirectory rejects directories a source should never return.
func checkDirectory(name string, d *Directory) error {
	if d.Source == "" {
		d.Source = name
	}
	if d.Source != name {
		return fmt.Errorf("source %s returned a directory of source %q", name, d.Source)
	}
	return nil
}

// Overlay merges a push source's users over the last complete pull of the same source, taken
// at taken. Pushed users join pulled ones by userName (case-insensitive), then by email; a
// push newer than the pull is laid over the pulled record field by field (overlayUser: what
// SCIM does not carry stays as pulled, and the pulled key, which links use, stays); an older
// push that disagrees with the pull loses, with a warning naming the user.
// Either way the joined user carries the pushed record's key as an alias: it is one person,
// and a link made under the SCIM id (by a push-triggered pass) must keep finding them after
// the pull lists them under its own key. Pushed users the pull does not know are added when
// newer than the pull.
func Overlay(pull Directory, taken time.Time, push Directory) (Directory, []Warning) {
	out := Directory{Source: pull.Source, Users: slices.Clone(pull.Users), Groups: slices.Clone(pull.Groups)}
	byName := make(map[string]int, len(out.Users))
	byEmail := make(map[string]int, len(out.Users))
	index := func(i int) {
		u := &out.Users[i]
		byName[lower(strings.TrimSpace(u.UserName))] = i
		if u.Email != "" {
			if _, dup := byEmail[lower(strings.TrimSpace(u.Email))]; !dup {
				byEmail[lower(strings.TrimSpace(u.Email))] = i
			}
		}
	}
	for i := range out.Users {
		index(i)
	}
	pushed := make(map[string]bool, len(push.Groups))
	for _, g := range push.Groups {
		pushed[lower(strings.TrimSpace(g.Name))] = true
	}
	var warns []Warning
	for _, u := range push.Users {
		j, ok := byName[lower(strings.TrimSpace(u.UserName))]
		if !ok && u.Email != "" {
			j, ok = byEmail[lower(strings.TrimSpace(u.Email))]
		}
		newer := u.Modified.After(taken)
		switch {
		case newer && ok:
			out.Users[j] = overlayUser(out.Users[j], u, pushed)
		case newer:
			out.Users = append(out.Users, u)
			index(len(out.Users) - 1)
		case ok:
			if disagree(out.Users[j], u, pushed) {
				warns = append(warns, Warning{Source: pull.Source, Key: out.Users[j].Key, UserName: u.UserName,
					Message: "the complete pull of " + taken.UTC().Format(time.RFC3339) + " disagrees with an older push; the pull wins"})
			}
			out.Users[j].Aliases = withKeys(out.Users[j].Aliases, out.Users[j].Key, u.Key, u.Aliases)
		case u.Active:
			warns = append(warns, Warning{Source: pull.Source, UserName: u.UserName,
				Message: "pushed before the complete pull of " + taken.UTC().Format(time.RFC3339) + ", which does not list the user; the pull wins"})
		}
	}
	have := make(map[string]bool, len(out.Groups))
	for _, g := range out.Groups {
		have[lower(g.Name)] = true
	}
	for _, g := range push.Groups {
		if !have[lower(g.Name)] {
			have[lower(g.Name)] = true
			out.Groups = append(out.Groups, g)
		}
	}
	return out, warns
}

// overlayUser lays a newer push over a pulled record field by field: a push changes only
// what SCIM carries (names, email, active, attributes it sends, and the memberships of the
// groups the SCIM client pushes, named in pushed); the groups and attributes only the pull
// knows stay as pulled. The pulled key stays (links use it) and the pushed key becomes an
// alias.
func overlayUser(pulled, push User, pushed map[string]bool) User {
	m := pulled
	m.Aliases = withKeys(pulled.Aliases, pulled.Key, push.Key, push.Aliases)
	m.Email = cmp.Or(push.Email, pulled.Email)
	m.DisplayName = cmp.Or(push.DisplayName, pulled.DisplayName)
	m.GivenName = cmp.Or(push.GivenName, pulled.GivenName)
	m.FamilyName = cmp.Or(push.FamilyName, pulled.FamilyName)
	m.Active = push.Active
	m.Modified = push.Modified
	groups := make([]string, 0, len(pulled.Groups)+len(push.Groups))
	for _, g := range pulled.Groups {
		if !pushed[lower(strings.TrimSpace(g))] {
			groups = append(groups, g)
		}
	}
	m.Groups = append(groups, push.Groups...)
	if len(push.Attributes) > 0 {
		m.Attributes = maps.Clone(pulled.Attributes)
		if m.Attributes == nil {
			m.Attributes = make(map[string]string, len(push.Attributes))
		}
		maps.Copy(m.Attributes, push.Attributes)
	}
	return m
}

// withKeys returns a new alias list: aliases plus key and more, without main (the user's own
// key), empty keys or repeats. It never appends into the caller's slice, which a cloned
// directory shares with its original.
func withKeys(aliases []string, main, key string, more []string) []string {
	out := make([]string, 0, len(aliases)+1+len(more))
	add := func(k string) {
		if k = strings.TrimSpace(k); k != "" && k != main && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, k := range aliases {
		add(k)
	}
	add(key)
	for _, k := range more {
		add(k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// disagree reports whether an older push b differs from the pulled a in what SCIM carries:
// names, email, active, and the memberships of the pushed groups.
func disagree(a, b User, pushed map[string]bool) bool {
	if a.Active != b.Active || !strings.EqualFold(strings.TrimSpace(a.Email), strings.TrimSpace(b.Email)) ||
		(b.DisplayName != "" && a.DisplayName != b.DisplayName) {
		return true
	}
	ga, gb := foldedSet(a.Groups), foldedSet(b.Groups)
	for g := range ga {
		if pushed[g] && !gb[g] {
			return true
		}
	}
	for g := range gb {
		if !ga[g] {
			return true
		}
	}
	return false
}

func foldedSet(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[lower(strings.TrimSpace(s))] = true
	}
	return m
}

// readTargeted builds each source's directory for a targeted pass: the stored snapshot with
// pushes laid over it, each targeted user fetched fresh where the source can (UserSource),
// then narrowed to the targeted people (and the records other sources hold for them).
func (r *Runner) readTargeted(ctx context.Context, o RunOptions) []*sourceRead {
	reads := make([]*sourceRead, len(r.cfg.Sources))
	for i, spec := range r.cfg.Sources {
		sr := &sourceRead{spec: spec, name: spec.Source.Name()}
		sr.run.Name = sr.name
		reads[i] = sr
		if o.Source != "" && o.Source != sr.name {
			r.fromStore(ctx, sr, "not read: pass limited to source "+o.Source)
			continue
		}
		r.fromStore(ctx, sr, "")
		if sr.pushErr != "" {
			sr.run.Error = sr.pushErr
			continue
		}
		sr.run.Error = ""
		sr.run.Complete = true
		us, ok := spec.Source.(UserSource)
		// Pushes are the fresh data of a push-triggered pass: fetching the user again from
		// the pull side would cost a call and could not see a pushed deletion.
		fetch := ok && len(o.Users) > 0 && !spec.PushOnly && !(o.Trigger == TriggerPush && spec.Push != nil)
		if !fetch {
			if !sr.have || spec.PushOnly {
				// Nothing stored: read it whole (push-only sources are cheap to read).
				dir, err := spec.Source.Snapshot(ctx)
				if err == nil {
					err = checkDirectory(sr.name, &dir)
				}
				if err != nil {
					sr.run.Complete = false
					sr.run.Error = err.Error()
					continue
				}
				sr.dir, sr.have = dir, true
			}
			continue
		}
		for _, name := range o.Users {
			u, err := us.User(ctx, name)
			switch {
			case errors.Is(err, ErrUserNotFound):
				sr.dir.Users = slices.DeleteFunc(slices.Clone(sr.dir.Users), func(x User) bool { return strings.EqualFold(strings.TrimSpace(x.UserName), name) })
			case err != nil:
				sr.run.Complete = false
				sr.run.Error = strings.TrimPrefix(sr.run.Error+"; fetching "+name+": "+err.Error(), "; ")
			default:
				sr.have = true
				sr.dir.Source = sr.name
				replaced := false
				for j := range sr.dir.Users {
					x := &sr.dir.Users[j]
					if (u.Key != "" && x.Key == u.Key) || strings.EqualFold(strings.TrimSpace(x.UserName), strings.TrimSpace(u.UserName)) {
						if u.Key == "" {
							u.Key = x.Key
						}
						// The record it replaces may be the pushed one (SCIM key) or carry
						// aliases: all of them stay keys of this person.
						u.Aliases = withKeys(x.Aliases, u.Key, x.Key, u.Aliases)
						sr.dir.Users = slices.Clone(sr.dir.Users)
						sr.dir.Users[j] = u
						replaced = true
						break
					}
				}
				if !replaced {
					sr.dir.Users = append(slices.Clone(sr.dir.Users), u)
				}
			}
		}
	}
	narrow(reads, o)
	for _, sr := range reads {
		sr.run.Users, sr.run.Groups = len(sr.dir.Users), len(sr.dir.Groups)
	}
	return reads
}

// narrow keeps only the targeted people's records in every source: users named in o.Users,
// members of o.Groups, and records of other sources sharing their email (so the merge by
// email still sees the whole person).
func narrow(reads []*sourceRead, o RunOptions) {
	names := foldedSet(o.Users)
	groups := foldedSet(o.Groups)
	emails := map[string]bool{}
	pick := func(u *User) bool {
		if names[lower(strings.TrimSpace(u.UserName))] {
			return true
		}
		for _, g := range u.Groups {
			if groups[lower(strings.TrimSpace(g))] {
				return true
			}
		}
		return false
	}
	for _, sr := range reads {
		for i := range sr.dir.Users {
			if u := &sr.dir.Users[i]; pick(u) && u.Email != "" {
				emails[lower(strings.TrimSpace(u.Email))] = true
			}
		}
	}
	for _, sr := range reads {
		var keep []User
		for i := range sr.dir.Users {
			u := &sr.dir.Users[i]
			if pick(u) || (u.Email != "" && emails[lower(strings.TrimSpace(u.Email))]) {
				keep = append(keep, *u)
			}
		}
		sr.dir.Users = keep
	}
}
