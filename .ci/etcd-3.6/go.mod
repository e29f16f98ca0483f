module consul-leader.test/etcd-server

go 1.22
