package image

import (
	"errors"
	"testing"

	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                            "docker.io/library/nginx:latest",
		"nginx:1.7.9":                      "docker.io/library/nginx:1.7.9",
		"me/app:1":                         "docker.io/me/app:1",
		"docker.io/library/busybox:1.36":   "docker.io/library/busybox:1.36",
		"ghcr.io/org/tool":                 "ghcr.io/org/tool:latest",
		"127.0.0.1:5000/x/y:2":             "127.0.0.1:5000/x/y:2",
		"  nginx:1.7.9 ":                   "docker.io/library/nginx:1.7.9",
		"nginx@sha256:" + sixtyFourA:       "docker.io/library/nginx@sha256:" + sixtyFourA,
		"nginx:1.7.9@sha256:" + sixtyFourA: "docker.io/library/nginx@sha256:" + sixtyFourA,
	} {
		got, err := NormalizeRef(in)
		if err != nil || got != want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Upper:1", "nginx:", "a b"} {
		if _, err := NormalizeRef(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("NormalizeRef(%q) error = %v, want errdefs.ErrInvalidArgument", bad, err)
		}
	}
}

const sixtyFourA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestImageNotFoundError(t *testing.T) {
	inner := errors.New("connection refused")
	err := error(&ImageNotFoundError{Ref: "docker.io/library/x:1", Tried: []string{"not in containerd", "registry r: connection refused"}, Err: inner})
	if got, want := err.Error(), "image docker.io/library/x:1 not found: not in containerd, registry r: connection refused"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrImageNotFound) || !errors.Is(err, errdefs.ErrNotFound) || !errors.Is(err, inner) {
		t.Error("errors.Is does not match ErrImageNotFound, errdefs.ErrNotFound and the registry's error")
	}
}
