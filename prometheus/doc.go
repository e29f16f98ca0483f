// Package leaderprom exports the elections of consul-leader as Prometheus metrics.
package leaderprom
