package errdefs

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestClassify(t *testing.T) {
	base := fmt.Errorf("open x: %w", os.ErrNotExist)
	err := Classify(ErrNotFound, base)
	if err.Error() != base.Error() {
		t.Errorf("message %q, want %q", err, base)
	}
	for _, target := range []error{ErrNotFound, os.ErrNotExist} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	if errors.Is(err, ErrInvalidArgument) {
		t.Error("a not-found error matches ErrInvalidArgument")
	}
	if !IsClassified(fmt.Errorf("wrapped: %w", err)) {
		t.Error("IsClassified of a wrapped classified error is false")
	}
	if IsClassified(base) {
		t.Error("IsClassified of a plain error is true")
	}
}
