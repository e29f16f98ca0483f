// Package urlparam parses the values of URL query parameters the same way
// for every backend URL.
package urlparam

import (
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// twoTo63 is the first number of nanoseconds beyond a time.Duration.
const twoTo63 = float64(1 << 63)

// Duration parses the value v of the URL parameter name, a Go duration such
// as 500ms or 10s. A value that is not one, or does not fit a time.Duration
// (about 292 years either way), is an *election.OptionError whose Field is
// "URL parameter <name>".
func Duration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, &election.OptionError{Field: field(name), Rule: "must be a duration such as 500ms or 10s, of at most " + time.Duration(math.MaxInt64).String(), Value: strconv.Quote(v)}
	}
	return d, nil
}

// DurationOrSeconds parses the value v of the URL parameter name, a Go
// duration such as 1500ms or a plain number of seconds such as 15 or 0.5.
// NaN, infinities and numbers beyond the range of a time.Duration are
// refused as out of range; every error is an *election.OptionError whose
// Field is "URL parameter <name>".
func DurationOrSeconds(name, v string) (time.Duration, error) {
	d, isNumber, err := seconds(name, v)
	if isNumber {
		return d, err
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	return 0, &election.OptionError{Field: field(name), Rule: "must be a duration such as 15s or 1500ms, or a number of seconds", Value: strconv.Quote(v)}
}

// CheckSeconds returns the out-of-range error of DurationOrSeconds when v
// is a number of seconds that does not fit a time.Duration, and nil for any
// other value: for parameters that another parser reads.
func CheckSeconds(name, v string) error {
	_, _, err := seconds(name, v)
	return err
}

// seconds parses v as a number of seconds, reporting whether it is a number.
func seconds(name, v string) (time.Duration, bool, error) {
	secs, err := strconv.ParseFloat(v, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, true, outOfRange(name, v)
	}
	if err != nil {
		return 0, false, nil
	}
	ns := math.Round(secs * float64(time.Second))
	if !(ns > -twoTo63 && ns < twoTo63) { // also NaN and infinities
		return 0, true, outOfRange(name, v)
	}
	return time.Duration(ns), true, nil
}

func outOfRange(name, v string) error {
	return &election.OptionError{Field: field(name), Rule: "is out of range: a duration must be finite and of at most " + time.Duration(math.MaxInt64).String(), Value: strconv.Quote(v)}
}

func field(name string) string { return "URL parameter " + name }
