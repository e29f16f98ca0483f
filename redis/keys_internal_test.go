package redis

import "testing"

// TestKeys: the names of a resource's keys and channels, which scripts,
// ACLs and other processes of a deployment rely on.
func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		prefix, resource string
		db               int
		want             keys
	}{
		{"election", "jobs", 0, keys{
			leader:   "election:{jobs}:leader",
			term:     "election:{jobs}:term",
			events:   "election:{jobs}:events",
			keyspace: "__keyspace@0__:election:{jobs}:leader",
		}},
		{"app:le", "a/b c", 12, keys{
			leader:   "app:le:{a/b c}:leader",
			term:     "app:le:{a/b c}:term",
			events:   "app:le:{a/b c}:events",
			keyspace: "__keyspace@12__:app:le:{a/b c}:leader",
		}},
	} {
		if got := newKeys(tc.prefix, tc.resource, tc.db); got != tc.want {
			t.Errorf("newKeys(%q, %q, %d) = %+v, want %+v", tc.prefix, tc.resource, tc.db, got, tc.want)
		}
	}
}
