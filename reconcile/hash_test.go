package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// hashByCopy is HashDirectory as it was first written: a sorted copy of the whole directory,
// encoded at once. The streaming version must hash every directory the same.
func hashByCopy(d Directory) string {
	c := Directory{Source: d.Source, Users: slices.Clone(d.Users), Groups: slices.Clone(d.Groups)}
	for i := range c.Users {
		g := slices.Clone(c.Users[i].Groups)
		slices.Sort(g)
		c.Users[i].Groups = g
	}
	slices.SortStableFunc(c.Users, func(a, b User) int { return strings.Compare(a.Key+"\x00"+a.UserName, b.Key+"\x00"+b.UserName) })
	slices.SortStableFunc(c.Groups, func(a, b Group) int { return strings.Compare(a.Key+"\x00"+a.Name, b.Key+"\x00"+b.Name) })
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(c)
	return hex.EncodeToString(h.Sum(nil))
}

func TestHashDirectoryMatchesCanonicalJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	// Short names from a small alphabet make equal keys and keys that prefix each other.
	word := func() string {
		const alpha = "ab<&\u00e9\x01"
		n := r.IntN(4)
		var b strings.Builder
		for range n {
			b.WriteString(string([]rune(alpha)[r.IntN(6)]))
		}
		return b.String()
	}
	for i := range 300 {
		var d Directory
		d.Source = word()
		if r.IntN(5) > 0 {
			d.Users = []User{}
			for range r.IntN(12) {
				u := User{Key: word(), UserName: word(), Email: word(), Active: r.IntN(2) == 0}
				for range r.IntN(4) {
					u.Groups = append(u.Groups, word())
				}
				if r.IntN(3) == 0 {
					u.Attributes = map[string]string{word(): word(), word(): word()}
				}
				d.Users = append(d.Users, u)
			}
		}
		if r.IntN(5) > 0 {
			d.Groups = []Group{}
			for range r.IntN(6) {
				d.Groups = append(d.Groups, Group{Key: word(), Name: word(), Description: word()})
			}
		}
		// Equal (key, name) pairs may differ elsewhere: both sorts are stable, so both keep
		// the listing's order among them.
		before := fmt.Sprint(d)
		if got, want := HashDirectory(d), hashByCopy(d); got != want {
			t.Fatalf("directory %d: HashDirectory %s, canonical JSON %s\n%+v", i, got, want, d)
		}
		if fmt.Sprint(d) != before {
			t.Fatalf("directory %d: HashDirectory changed its argument", i)
		}
	}
}

func TestHashDirectoryIgnoresOrder(t *testing.T) {
	d := Directory{Source: "corp", Users: []User{
		{Key: "2", UserName: "bob", Groups: []string{"b", "a"}},
		{Key: "1", UserName: "alice", Groups: []string{"x"}},
	}, Groups: []Group{{Key: "b", Name: "b"}, {Key: "a", Name: "a"}}}
	e := Directory{Source: "corp", Users: []User{
		{Key: "1", UserName: "alice", Groups: []string{"x"}},
		{Key: "2", UserName: "bob", Groups: []string{"a", "b"}},
	}, Groups: []Group{{Key: "a", Name: "a"}, {Key: "b", Name: "b"}}}
	if HashDirectory(d) != HashDirectory(e) {
		t.Fatal("the same directory listed in another order hashes differently")
	}
	e.Users[1].Groups = []string{"a"}
	if HashDirectory(d) == HashDirectory(e) {
		t.Fatal("a membership less hashes the same")
	}
}
