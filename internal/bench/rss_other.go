//go:build !unix

package bench

func rusagePeak() uint64 { return 0 }
