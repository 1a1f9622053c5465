// Package logging builds idsync's zerolog logger: JSON by default, console on a TTY, with the
// field names every component uses.
//
// Durations are logged in whole milliseconds, and their field names end in _ms ("took_ms":
// 2924, "timeout_ms": 30000): zerolog's Dur writes integers in milliseconds for every logger
// of the process once this package is imported (see init below).
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// Field names shared by every component.
const (
	FieldRunID     = "run_id"
	FieldSource    = "source"
	FieldComponent = "component"
	FieldTrigger   = "trigger"
	FieldUser      = "user"
	FieldKind      = "kind"
)

// Formats accepted by log.format.
const (
	FormatAuto    = "auto"
	FormatJSON    = "json"
	FormatConsole = "console"
)

// DurationUnit is the unit of every duration field: whole milliseconds.
const DurationUnit = time.Millisecond

// init makes zerolog's Dur and Durs write whole milliseconds (its default is a float of
// milliseconds, which reads as unitless: "took":2924.39). These are zerolog globals, set once
// here before any logger exists rather than in New, which may run while others log.
func init() {
	zerolog.DurationFieldUnit = DurationUnit
	zerolog.DurationFieldInteger = true
}

// New builds a logger writing to w. format "auto" (or "") means console when w is a
// terminal, JSON otherwise.
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl := zerolog.InfoLevel
	if level != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(level))
		if err != nil {
			return zerolog.Nop(), fmt.Errorf("log.level %q: %w", level, err)
		}
		lvl = l
	}
	switch strings.ToLower(format) {
	case "", FormatAuto:
		if isTerminal(w) {
			w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
		}
	case FormatJSON:
	case FormatConsole:
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	default:
		return zerolog.Nop(), fmt.Errorf("log.format %q: want auto, json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// IsTerminal reports whether w is a terminal (used for log format and progress bars).
func IsTerminal(w io.Writer) bool { return isTerminal(w) }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
