//go:build !unix

package configs

import "os"

// mkfifo stands in with a directory where FIFOs do not exist: also not a regular file.
func mkfifo(path string) error { return os.Mkdir(path, 0o700) }
