module consul-leader.test/consul-agent

go 1.22
