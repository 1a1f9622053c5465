package packaging

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// SourceDateEpoch is the time the artifacts are dated: the value (Unix seconds) if given,
// else $SOURCE_DATE_EPOCH, else the Unix epoch. The Makefile passes the last commit's time, so
// a rebuild of one commit gives the same archive and image bytes.
func SourceDateEpoch(value string) (time.Time, error) {
	if value == "" {
		value = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if value == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("source date %q: want Unix seconds", value)
	}
	return time.Unix(n, 0).UTC(), nil
}
