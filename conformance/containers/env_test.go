package containers

import (
	"os"
	"strings"
)

// store names the environment variables that choose how the tests reach one
// kind of server: the image of its containers, or the address of a server
// that already runs.
type store struct {
	name         string
	imageVar     string
	defaultImage string
	addrVar      string
}

var (
	consulStore = store{name: "Consul", imageVar: "CONSUL_IMAGE", defaultImage: "hashicorp/consul:1.16", addrVar: "CONSUL_ADDR"}
	etcdStore   = store{name: "etcd", imageVar: "ETCD_IMAGE", defaultImage: "gcr.io/etcd-development/etcd:v3.6.17", addrVar: "ETCD_ADDR"}
	redisStore  = store{name: "Redis", imageVar: "REDIS_IMAGE", defaultImage: "redis:7", addrVar: "REDIS_ADDR"}
)

// image returns the image to run.
func (s store) image() string {
	if v := strings.TrimSpace(os.Getenv(s.imageVar)); v != "" {
		return v
	}
	return s.defaultImage
}

// addrs returns the addresses of the running server to use instead of a
// container, or nil.
func (s store) addrs() []string {
	var out []string
	for _, a := range strings.Split(os.Getenv(s.addrVar), ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
