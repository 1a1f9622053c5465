package state

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/reconcile"
)

// mappedKB is how much of the file at path this process has resident through its memory
// maps (the Rss lines of its mappings in /proc/self/smaps).
func mappedKB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-"):
			in = len(fields) >= 6 && fields[5] == path
		case in && len(fields) == 3 && fields[0] == "Rss:":
			n, _ := strconv.Atoi(fields[1])
			total += n
		}
	}
	return total
}

// A bulk read leaves next to nothing of the state file resident: read without releasing, the
// same records keep megabytes of it mapped.
func TestBulkReadReleasesTheMap(t *testing.T) {
	s := newStore(t)
	var own []reconcile.Owned
	for i := range 40000 {
		own = append(own, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: fmt.Sprintf("group-%04d", i%500),
			ContainerName: fmt.Sprintf("Group %d", i%500), AccountID: fmt.Sprintf("712020:%032d", i)})
	}
	if err := s.Journal(reconcile.JournalEntry{Own: own}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() < 8<<20 {
		t.Fatalf("state file is %d bytes, too small to tell", info.Size())
	}

	// Without releasing, reading every record maps the pages it reads.
	if err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucketOwned)).ForEach(func(_, v []byte) error {
			if len(v) == 0 {
				return fmt.Errorf("empty record")
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if kb := mappedKB(t, s.Path()); kb < 4<<10 {
		t.Fatalf("a plain read of %d records left %d KB resident: the test cannot tell a release", len(own), kb)
	}

	got, err := s.Owned()
	if err != nil || len(got) != len(own) {
		t.Fatalf("Owned() = %d records, %v", len(got), err)
	}
	if kb := mappedKB(t, s.Path()); kb > 512 {
		t.Fatalf("after Owned() %d KB of the %d MB state file stay resident", kb, info.Size()>>20)
	}
	// The records still read right after the release.
	if got[0].AccountID == "" || got[len(got)-1].Container == "" {
		t.Fatalf("records read after a release are empty: %+v %+v", got[0], got[len(got)-1])
	}
}
