// Command mkimage writes idsync's OCI image as a docker-compatible tarball, without a
// container engine (`make image`):
//
//	mkimage -bin bin/idsync-linux-amd64 -out bin/idsync-image.tar -version v0.1.0 -revision abc123
//
// The binary must be a static Linux build (CGO_ENABLED=0). Load the result with
// `docker load -i bin/idsync-image.tar` or `podman load -i bin/idsync-image.tar`.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/idsync/idsync/internal/packaging"
)

func main() {
	var o packaging.ImageOptions
	out := flag.String("out", "bin/idsync-image.tar", "the image tarball to write")
	created := flag.String("created", "", "creation time and file mtimes, Unix seconds (default $SOURCE_DATE_EPOCH, else 0)")
	flag.StringVar(&o.Binary, "bin", "bin/idsync-linux-amd64", "the static Linux idsync binary")
	flag.StringVar(&o.CACerts, "cacerts", packaging.DefaultCACerts, "PEM bundle of CA certificates to include")
	flag.StringVar(&o.Version, "version", "dev", "version (label and tag)")
	flag.StringVar(&o.Revision, "revision", "unknown", "VCS revision (label)")
	flag.StringVar(&o.Source, "source", packaging.DefaultSource, "source repository (label)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected arguments: %v", flag.Args()))
	}
	t, err := packaging.SourceDateEpoch(*created)
	if err != nil {
		fail(err)
	}
	o.Created = t
	img, err := packaging.BuildImage(o)
	if err != nil {
		fail(err)
	}
	tag, err := packaging.Tag(o.Version)
	if err != nil {
		fail(err)
	}
	if err := packaging.WriteImage(*out, tag, img); err != nil {
		fail(err)
	}
	// docker and podman name a loaded image by its config's digest (the image ID).
	id, err := img.ConfigName()
	if err != nil {
		fail(err)
	}
	st, err := os.Stat(*out)
	if err != nil {
		fail(err)
	}
	fmt.Printf("%s: %s (image ID %s), %.1f MiB; load it with: docker load -i %s\n",
		*out, tag.String(), id, float64(st.Size())/(1<<20), *out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}
