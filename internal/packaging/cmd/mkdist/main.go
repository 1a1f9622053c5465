// Command mkdist builds idsync's release archives (`make dist`): for each target a static
// binary (CGO_ENABLED=0, -trimpath, the given -ldflags) packed with LICENSE, README.md,
// CHANGELOG.md, configs/idsync.example.yaml and the guides under docs/ into
// OUT/idsync_VERSION_OS_ARCH.tar.gz, and OUT/SHA256SUMS over them (check with
// `cd OUT && sha256sum -c SHA256SUMS`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/idsync/idsync/internal/packaging"
)

func main() {
	var defTargets []string
	for _, t := range packaging.Targets {
		defTargets = append(defTargets, t.String())
	}
	var o packaging.DistOptions
	targets := flag.String("targets", strings.Join(defTargets, ","), "OS/ARCH list")
	mtime := flag.String("mtime", "", "mtime of archive entries, Unix seconds (default $SOURCE_DATE_EPOCH, else 0)")
	flag.StringVar(&o.Version, "version", "dev", "version (in the archive names)")
	flag.StringVar(&o.LDFlags, "ldflags", "", "go build -ldflags (the version flags)")
	flag.StringVar(&o.OutDir, "out", "bin/dist", "folder of the archives and SHA256SUMS")
	flag.StringVar(&o.Root, "root", ".", "repository root")
	flag.StringVar(&o.Go, "go", "go", "the go command")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments: %v", flag.Args()))
	}
	var err error
	if o.Targets, err = packaging.ParseTargets(*targets); err != nil {
		fail(err)
	}
	if o.MTime, err = packaging.SourceDateEpoch(*mtime); err != nil {
		fail(err)
	}
	o.Log = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := packaging.Dist(ctx, o); err != nil {
		fail(err)
	}
	fmt.Printf("%s/%s written\n", o.OutDir, packaging.SumsFile)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkdist:", err)
	os.Exit(1)
}
