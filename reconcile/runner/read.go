package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// sourceRead is what a pass knows about one source.
type sourceRead struct {
	spec  SourceSpec
	name  string
	dir   reconcile.Directory
	have  bool // dir is usable (fresh, or a stored snapshot)
	fresh bool // read completely in this pass
	run   reconcile.SourceRun
	warns []reconcile.Warning
	// pushErr is set when the pushes of a pulled-and-pushed source could not be read: the
	// source is then unusable for the pass, targeted or not.
	pushErr string
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
	progress := func(pages, objects int) { r.obs.SourceProgress(sr.name, pages, objects) }
	dir, err := sr.spec.Source.Snapshot(reconcile.WithReadProgress(ctx, progress))
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
	sr.run.Hash = reconcile.HashDirectory(dir)
	taken := now
	if !dryRun {
		if err := r.cfg.Store.PutSnapshot(reconcile.SnapshotRecord{Source: sr.name, Taken: now, Hash: sr.run.Hash, Directory: dir}); err != nil {
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
	case errors.Is(err, reconcile.ErrNotFound):
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
		sr.dir, sr.have, sr.fresh = reconcile.Directory{Source: sr.name}, false, false
		sr.run.Complete = false
		sr.run.Error = strings.TrimPrefix(sr.run.Error+"; "+sr.pushErr, "; ")
		return
	}
	var w []reconcile.Warning
	sr.dir, w = reconcile.Overlay(sr.dir, taken, push)
	sr.dir.Source = sr.name
	sr.have = true
	sr.warns = append(sr.warns, w...)
}

// checkDirectory rejects directories a source should never return.
func checkDirectory(name string, d *reconcile.Directory) error {
	if d.Source == "" {
		d.Source = name
	}
	if d.Source != name {
		return fmt.Errorf("source %s returned a directory of source %q", name, d.Source)
	}
	return nil
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
		us, ok := spec.Source.(reconcile.UserSource)
		// Pushes are the fresh data of a push-triggered pass: fetching the user again from
		// the pull side would cost a call and could not see a pushed deletion.
		fetch := ok && len(o.Users) > 0 && !spec.PushOnly && !(o.Trigger == reconcile.TriggerPush && spec.Push != nil)
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
			case errors.Is(err, reconcile.ErrUserNotFound):
				sr.dir.Users = slices.DeleteFunc(slices.Clone(sr.dir.Users), func(x reconcile.User) bool { return strings.EqualFold(strings.TrimSpace(x.UserName), name) })
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
						u.Aliases = reconcile.WithKeys(x.Aliases, u.Key, x.Key, u.Aliases)
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
	pick := func(u *reconcile.User) bool {
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
		var keep []reconcile.User
		for i := range sr.dir.Users {
			u := &sr.dir.Users[i]
			if pick(u) || (u.Email != "" && emails[lower(strings.TrimSpace(u.Email))]) {
				keep = append(keep, *u)
			}
		}
		sr.dir.Users = keep
	}
}

// foldedSet is the set of ss, trimmed and lower-cased.
func foldedSet(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[lower(strings.TrimSpace(s))] = true
	}
	return m
}
