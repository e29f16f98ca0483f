//go:build tools

// Package tools pins the etcd server that the tests of consul-leader build:
//
//	go build -o etcd go.etcd.io/etcd/server/v3
package tools

import _ "go.etcd.io/etcd/server/v3"
