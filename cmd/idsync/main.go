// Command idsync keeps Jira Cloud users, groups and service-desk customers in line with an
// identity provider. This package only wires subcommands to the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/internal/cli"
	"github.com/idsync/idsync/internal/version"
)

// Exit codes, documented in docs/reference.md.
const (
	exitOK       = 0
	exitPartial  = 1   // some items failed
	exitConfig   = 2   // config, usage or connection error
	exitHeld     = 3   // the circuit breaker held changes back
	exitNotImpl  = 4   // command not available in this build
	exitInternal = 5   // an internal failure, or `run` that did not stop within shutdown_timeout
	exitForced   = 130 // `run` stopped by a second SIGINT/SIGTERM (128 + SIGINT)
)

// exitError carries an exit code up to main without calling os.Exit deep in the call chain.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

func execute(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && !errors.Is(ee.err, errSilent) {
			fmt.Fprintln(stderr, "idsync:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "idsync:", err)
	return exitConfig
}

// errSilent marks an exit whose message was already printed.
var errSilent = errors.New("")

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "idsync",
		Short:         "Keep Jira Cloud users, groups and customers in line with your identity provider",
		Long:          rootLong,
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version prints what `idsync version` prints: version, VCS revision, Go version.
	root.SetVersionTemplate(version.Long() + "\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newRunCmd(),
		newReconcileCmd(),
		newPlanCmd(),
		newValidateCmd(),
		newDemoCmd(),
		newSimCmd(),
		newBenchCmd(),
		newStateCmd(),
		newAuditCmd(),
		newApproveCmd(),
		newStatusCmd(),
		newVersionCmd(),
	)
	return root
}

// rootLong is `idsync --help`'s text above the command list.
const rootLong = `idsync keeps Jira Cloud users, groups and service-desk customers in line with your identity
provider: scheduled pulls, a SCIM 2.0 listener for pushes, one-user syncs on demand, and a
plan to read before anything changes.

The config file is -c FILE, else $IDSYNC_CONFIG, else ` + cli.DefaultConfigPath + `.
Shell completion: idsync completion bash|zsh|fish|powershell --help says how to load it.`

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
