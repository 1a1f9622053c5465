package miniorange

import (
	"strings"
	"testing"
)

// FuzzDecodeAnswers feeds arbitrary bytes to every answer decoder and the converter: any
// input must give a value or an error, never a panic.
func FuzzDecodeAnswers(f *testing.F) {
	for _, seed := range []string{
		`{"status":"SUCCESS","totalCount":2,"users":[{"id":"1","username":"a","email":"A@x","firstName":"A","lastName":"B","phone":"1","status":"ACTIVE","groups":["G"],"customAttributes":{"k":"v"}}]}`,
		`{"status":"SUCCESS","totalCount":1,"users":[{"id":7,"username":"b","status":"DISABLED","groups":[{"name":"G"}],"customAttributes":[{"name":"k","value":3}]}]}`,
		`{"status":"SUCCESS","totalCount":3,"members":["a",{"username":"b"}]}`,
		`{"status":"SUCCESS","id":"1","username":"a","userStatus":"ACTIVE","groups":[]}`,
		`{"status":"SUCCESS","totalCount":1,"users":[{"id":"3","username":"c","groups":["G"]}]}`,
		`{"status":"SUCCESS","totalCount":1,"users":[{"id":"4","username":"d","state":"ACTIVE","userStatus":"PENDING"}]}`,
		`{"status":"SUCCESS","id":"1","username":"a","groups":[]}`,
		`{"status":"ERROR","message":"Authentication failed"}`,
		`1712345678901`, `{"users":null}`, `[]`, `"x"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var u usersAnswer
		if u.decode(b) == nil {
			for _, x := range u.Users {
				state, _ := listState(x)
				active, err := parseStatus(state)
				if err != nil && active {
					t.Fatalf("status %q: an unusable status was taken as active", state)
				}
				if strings.TrimSpace(state) == "" && err == nil {
					t.Fatalf("a missing status was accepted")
				}
				_ = convertUser(x, active, []string{"DEFAULT"})
			}
		}
		var m membersAnswer
		_ = m.decode(b)
		var g groupsAnswer
		_ = g.decode(b)
		var one userGetAnswer
		if one.decode(b) == nil {
			active, err := parseStatus(one.UserStatus)
			if err != nil && active {
				t.Fatalf("userStatus %q: an unusable status was taken as active", one.UserStatus)
			}
			_ = convertUser(one.moUser, active, nil)
		}
		_, _ = parseServerTime(b)
	})
}
