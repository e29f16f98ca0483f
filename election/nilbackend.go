package election

import "reflect"

// nilBackend reports whether b is nil, or a nil pointer (or other nil
// value) of a backend type, whose methods would panic in the campaign's
// goroutine rather than fail the constructor.
func nilBackend(b Backend) bool {
	if b == nil {
		return true
	}
	switch v := reflect.ValueOf(b); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// errNilBackend is the error of a constructor given a nil backend.
func errNilBackend() error { return &OptionError{Field: "backend", Rule: "must not be nil"} }
