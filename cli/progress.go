package cli

import (
	"fmt"
	"io"
	"sync"

	"github.com/kelpie-dev/kelpie/runtime/image"
)

// imageProgress draws image import and pull progress on a terminal: one
// line per image, rewritten in place, ended when the image is ready. It is
// safe for the concurrent reports of different images (the lines of two
// images pulled at once may interleave, each complete).
type imageProgress struct {
	mu   sync.Mutex
	w    io.Writer
	last string // ref of the line being rewritten, "" when none
}

// report is a image.ProgressFunc; it must not block for long.
func (p *imageProgress) report(r image.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last != "" && p.last != r.Ref {
		fmt.Fprintln(p.w)
	}
	line := fmt.Sprintf("%s: %s", r.Ref, r.Stage)
	if r.Total > 0 {
		line += fmt.Sprintf(" %s / %s (%d%%)", humanBytes(r.Current), humanBytes(r.Total), r.Current*100/r.Total)
	} else if r.Current > 0 {
		line += " " + humanBytes(r.Current)
	}
	if r.Source != "" {
		line += " from " + r.Source
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	p.last = r.Ref
	if r.Stage == image.StageDone {
		fmt.Fprintln(p.w)
		p.last = ""
	}
}

// humanBytes formats a byte count: 512 B, 1.5 KiB, 23.4 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
