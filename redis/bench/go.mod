module github.com/consul-leader/consul-leader/redis/bench

go 1.24.0

require (
	github.com/consul-leader/consul-leader v0.0.0-00010101000000-000000000000
	github.com/go-redsync/redsync/v4 v4.15.0
	github.com/redis/go-redis/v9 v9.22.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/hashicorp/errwrap v1.1.0 // indirect
	github.com/hashicorp/go-multierror v1.1.1 // indirect
	go.uber.org/atomic v1.11.0 // indirect
	golang.org/x/sys v0.41.0 // indirect
)

replace github.com/consul-leader/consul-leader => ../..
