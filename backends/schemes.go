package backends

// scheme returns the backend that opens URLs of scheme s.
func scheme(s string) (openFunc, bool) {
	switch s {
	case "memory":
		return openMemory, true
	}
	return nil, false
}
