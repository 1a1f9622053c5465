package daemon

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
)

// scheduler runs scheduled passes with robfig/cron, wrapped so a panic is recovered and a tick
// that arrives while the previous scheduled pass still runs is skipped (and counted).
type scheduler struct {
	log     zerolog.Logger
	run     func(ctx context.Context) // one scheduled pass, blocking
	skipped func()

	// now is the clock of interval; the next tick is cron's own (Entry.Next).
	now func() time.Time

	mu       sync.Mutex
	cron     *cron.Cron
	entry    cron.EntryID
	spec     string
	jitter   time.Duration
	schedule cron.Schedule
	ctx      context.Context
}

func newScheduler(ctx context.Context, log zerolog.Logger, run func(context.Context), skipped func()) *scheduler {
	return &scheduler{ctx: ctx, log: log, run: run, skipped: skipped, now: time.Now}
}

// set (re)starts the schedule; an unchanged spec and jitter keep the running cron.
func (s *scheduler) set(spec string, jitter time.Duration) error {
	sched, err := configs.ParseSchedule(spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cron != nil && spec == s.spec && jitter == s.jitter {
		return nil
	}
	if s.cron != nil {
		s.cron.Stop() // a running job keeps running; only future ticks change
	}
	c := cron.New(cron.WithChain(cron.Recover(cronLogger{s.log}), s.skipIfStillRunning()))
	id := c.Schedule(sched, cron.FuncJob(func() {
		if !sleepCtx(s.ctx, jitterDelay(jitter)) {
			return
		}
		s.run(s.ctx)
	}))
	c.Start()
	s.cron, s.entry, s.spec, s.jitter, s.schedule = c, id, spec, jitter, sched
	s.log.Info().Str("schedule", spec).Dur("jitter_ms", jitter).Time("next", c.Entry(id).Next).Msg("schedule set")
	return nil
}

// skipIfStillRunning is cron's wrapper of that name, plus a counter of skipped ticks.
func (s *scheduler) skipIfStillRunning() cron.JobWrapper {
	return func(j cron.Job) cron.Job {
		ch := make(chan struct{}, 1)
		ch <- struct{}{}
		return cron.FuncJob(func() {
			select {
			case v := <-ch:
				defer func() { ch <- v }()
				j.Run()
			default:
				s.log.Warn().Msg("scheduled pass skipped: the previous one is still running")
				if s.skipped != nil {
					s.skipped()
				}
			}
		})
	}
}

// interval is the time between two scheduled passes (for readiness).
func (s *scheduler) interval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schedule == nil {
		return 0
	}
	a := s.schedule.Next(s.now())
	return s.schedule.Next(a).Sub(a)
}

// next is the next tick of the schedule as the running cron has it (zero when none): the
// same answer however often it is asked, until that tick fires. An "@every" schedule ticks
// one interval after the cron started (or after its last tick), not one interval after the
// question. The pass itself starts up to the configured jitter later.
func (s *scheduler) next() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cron == nil {
		return time.Time{}
	}
	return s.cron.Entry(s.entry).Next
}

// stop stops future ticks and waits for a running scheduled job to notice ctx.
func (s *scheduler) stop() {
	s.mu.Lock()
	c := s.cron
	s.mu.Unlock()
	if c != nil {
		<-c.Stop().Done()
	}
}

func jitterDelay(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(max)))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// cronLogger adapts zerolog to cron.Logger (used by Recover).
type cronLogger struct{ l zerolog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug().Fields(kv).Msg(msg) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error().Err(err).Fields(kv).Msg(msg)
}
