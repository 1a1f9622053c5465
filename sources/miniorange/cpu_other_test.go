//go:build !unix

package miniorange

import "time"

func processCPU() time.Duration { return 0 }
