package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/runtime/image"
)

func TestImageProgress(t *testing.T) {
	var b bytes.Buffer
	p := &imageProgress{w: &b}
	p.report(image.Progress{Ref: "docker.io/library/a:1", Stage: image.StageFetching, Current: 1536, Total: 3 << 20, Source: "registry http://127.0.0.1:5000"})
	p.report(image.Progress{Ref: "docker.io/library/a:1", Stage: image.StageDone})
	out := b.String()
	for _, want := range []string{"a:1: fetching 1.5 KiB / 3.0 MiB (0%) from registry http://127.0.0.1:5000", "a:1: done\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
