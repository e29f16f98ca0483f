package conformance

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// resourceChars are the characters of a valid resource name, "/" last.
const resourceChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/"

// ValidResourceNames returns a varied set of valid resource names: every
// allowed character first, inside and last; dots, colons, dashes and
// underscores alone and at the edges of path segments ("a.", ".a", "..a",
// "a..", "..."); and names of the maximum length. Every store must keep each
// of them byte for byte, so that every elector reads the key the leader
// holds.
func ValidResourceNames() []string {
	var names []string
	for _, c := range resourceChars[:len(resourceChars)-1] {
		s := string(c)
		names = append(names, s+"x"+s+"x"+s)
	}
	names = append(names,
		"a", "Z", "0", "-", "_", ":", "...", "..a", "a..", ".a", "a.", ".a.",
		"x/x", "a/b/c/d", "a/.b", "a/b.", "a/..b", "a/b..", ".a/b", "..a/b", "a./b", "a../b",
		"a/.../b", ".../a", "a/...", "._/-.", "a/.-/b", "a/._", "-/_/:",
		"a:b", ":a", "a:", "a:/b", "a/:b", "::", "-a", "a-", "--", "_a_", "a/-/b", "a/_/b", "a/:/b",
		"Case", "case", "CASE", "0123456789",
		"service", "leader", "a/leader", "election",
	)
	var cycle strings.Builder
	for i := 0; cycle.Len() < election.MaxResourceLength; i++ {
		if i%8 == 7 && cycle.Len() < election.MaxResourceLength-1 {
			cycle.WriteByte('/')
			continue
		}
		cycle.WriteByte(resourceChars[i%(len(resourceChars)-1)])
	}
	names = append(names,
		cycle.String(),
		strings.Repeat(".", election.MaxResourceLength),
		strings.Repeat("z", election.MaxResourceLength),
		strings.Repeat("a/", election.MaxResourceLength/2-1)+"aa",
		strings.Repeat("..a/", election.MaxResourceLength/4-1)+"a..a",
		strings.Repeat(":-", election.MaxResourceLength/2),
	)
	return names
}

// testNames checks, for every name of ValidResourceNames, that a candidate
// leads it and that another candidate's Leader() names that candidate with
// the term its handler was given.
func testNames(s *suite) {
	names := ValidResourceNames()
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, name := range names {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.checkName(name, i)
		}()
	}
	wg.Wait()
	s.t.Logf("%d resource names led and read back", len(names))
}

func (s *suite) checkName(name string, i int) {
	ctx := context.Background()
	open := func(id string) *election.Elector {
		el, _, err := s.store.NewCandidate(s.t, s.options(name, id))
		if err != nil {
			s.t.Errorf("resource %q: NewCandidate %s: %v", name, id, err)
			return nil
		}
		return el
	}
	closeAll := func(els ...*election.Elector) {
		for _, el := range els {
			cctx, cancel := context.WithTimeout(ctx, s.closeBound(s.options(name, "x")))
			if err := el.Close(cctx); err != nil {
				s.t.Errorf("resource %q: Close: %v", name, err)
			}
			cancel()
		}
	}
	holderID := "holder-" + string(rune('a'+i%26))
	holder := open(holderID)
	if holder == nil {
		return
	}
	led := make(chan election.Leadership, 1)
	if err := holder.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			select {
			case led <- l:
			default:
			}
		}
		return nil
	}); err != nil {
		s.t.Errorf("resource %q: Start: %v", name, err)
		closeAll(holder)
		return
	}
	var l election.Leadership
	select {
	case l = <-led:
	case <-time.After(s.failover()):
		s.t.Errorf("resource %q: the only candidate did not lead", name)
		closeAll(holder)
		return
	}
	if l.Resource != name || l.LeaderID != holderID || l.Term == 0 {
		s.t.Errorf("resource %q: leader call %+v", name, l)
	}
	observer := open("observer")
	if observer == nil {
		closeAll(holder)
		return
	}
	// A read that fails (a timeout on a loaded machine) is tried again: it
	// is what a successful read returns that counts.
	got, err := observer.Leader(ctx)
	for deadline := time.Now().Add(3 * s.c.Slack); err != nil && time.Now().Before(deadline); {
		time.Sleep(s.defaults().RetryInterval / 10)
		got, err = observer.Leader(ctx)
	}
	if err != nil || got.LeaderID != holderID || got.Term != l.Term || got.IsLeader || got.Resource != name {
		s.t.Errorf("resource %q: another candidate's Leader() = %+v, %v; want %s with term %d", name, got, err, holderID, l.Term)
	}
	closeAll(observer, holder)
}
