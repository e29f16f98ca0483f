package election

// FixedRenewals returns o with a session's first renewal at RenewInterval,
// as every renewal after it, instead of at a random point in its second
// half: tests that time renewals to the instant use it.
func FixedRenewals(o Options) Options {
	o.fixedRenewals = true
	return o
}

// FixedSessionRenewals is FixedRenewals for a shared session.
func FixedSessionRenewals(o SessionOptions) SessionOptions {
	o.fixedRenewals = true
	return o
}
