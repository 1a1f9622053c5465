package state

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// lockHelperEnv makes the test binary act as a second idsync process: it opens the state
// file named by the variable and reports how that went on stdout.
const lockHelperEnv = "IDSYNC_STATE_TEST_OPEN"

func TestMain(m *testing.M) {
	if path := os.Getenv(lockHelperEnv); path != "" {
		os.Exit(openFromHelper(path))
	}
	goleak.VerifyTestMain(m)
}

func openFromHelper(path string) int {
	s, err := Open(path, Options{Timeout: 300 * time.Millisecond})
	switch {
	case errors.Is(err, ErrLocked):
		fmt.Println("LOCKED")
		fmt.Println(err.Error())
		return 3
	case err != nil:
		fmt.Println("ERROR")
		fmt.Println(err.Error())
		return 1
	}
	_ = s.Close()
	fmt.Println("OPENED")
	return 0
}
