// Package errdefs holds the error sentinels of kelpie's runtime packages
// (image, network, volume, host): callers test what those packages return
// with errors.Is against these, whichever package the error came from.
//
// The classes mirror containerd's errdefs, so that package image can
// convert containerd's errors at its boundary (image.ConvertErr). This
// package never imports containerd, and it decides nothing.
package errdefs

import "errors"

// Errors callers test with errors.Is. Errors from containerd are converted
// to these at the image package's boundary; the original message is kept.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotImplemented     = errors.New("not implemented")
)

// classified keeps an error's message while making errors.Is match both
// its sentinel and the original error chain.
type classified struct {
	sentinel error
	err      error
}

func (e *classified) Error() string   { return e.err.Error() }
func (e *classified) Unwrap() []error { return []error{e.sentinel, e.err} }

// Classify returns an error with err's message that errors.Is matches
// against sentinel as well as against err's own chain: the message stays
// the operator's whole story, without a sentinel's words appended.
func Classify(sentinel, err error) error {
	return &classified{sentinel: sentinel, err: err}
}

// IsClassified reports whether err, or an error it wraps, was made by
// Classify.
func IsClassified(err error) bool {
	var c *classified
	return errors.As(err, &c)
}
