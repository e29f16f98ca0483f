package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDoShares(t *testing.T) {
	var g Group[int]
	var calls atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]int, 100)
	sharedN := atomic.Int32{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		v, _, _ := g.Do(context.Background(), "k", func() (int, error) {
			calls.Add(1)
			close(started)
			<-release
			return 7, nil
		})
		results[0] = v
	}()
	<-started
	for i := 1; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, shared, err := g.Do(context.Background(), "k", func() (int, error) {
				calls.Add(1)
				return 8, nil
			})
			if err != nil {
				t.Error(err)
			}
			if shared {
				sharedN.Add(1)
			}
			results[i] = v
		}()
	}
	time.Sleep(20 * time.Millisecond) // let them join
	close(release)
	wg.Wait()
	// A caller that arrived after the call ended runs its own (8); the
	// others share the 7.
	if n := calls.Load(); int(n) != 1+99-int(sharedN.Load()) {
		t.Errorf("%d calls, %d shared of 99", n, sharedN.Load())
	}
	if sharedN.Load() == 0 {
		t.Error("no caller shared the call in flight")
	}
	for i, v := range results {
		if v != 7 && v != 8 {
			t.Errorf("result %d = %d", i, v)
		}
	}
}

func TestDoFailedCallNotShared(t *testing.T) {
	var g Group[int]
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _, _ = g.Do(context.Background(), "k", func() (int, error) {
			close(started)
			<-release
			return 0, errors.New("cancelled")
		})
	}()
	<-started
	done := make(chan struct{})
	var v int
	var shared bool
	var err error
	go func() {
		defer close(done)
		v, shared, err = g.Do(context.Background(), "k", func() (int, error) { return 9, nil })
	}()
	time.Sleep(10 * time.Millisecond)
	close(release)
	<-done
	if err != nil || shared || v != 9 {
		t.Errorf("after a failed call: %d, shared %v, %v; want its own call's 9", v, shared, err)
	}
}

func TestDoWaiterContext(t *testing.T) {
	var g Group[int]
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	go func() {
		_, _, _ = g.Do(context.Background(), "k", func() (int, error) {
			close(started)
			<-release
			return 1, nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, err := g.Do(ctx, "k", func() (int, error) { return 2, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting past its deadline: %v", err)
	}
}
