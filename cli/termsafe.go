package cli

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// termSafe makes text that came from outside kelpie (commit subjects and
// authors, ref and image names, file paths, messages that quote them,
// names from other hosts) safe to print to a terminal: control characters
// (C0 but tab, DEL, C1) and invalid UTF-8 are written as Go escapes, so a
// commit subject cannot move the cursor, retitle the window, rewrite the
// clipboard or hide a line. JSON output needs no such care: encoding/json
// escapes them itself.
func termSafe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// needsEscape reports whether termSafe would change s.
func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x20 && r != '\t') || (r >= 0x7f && r <= 0x9f) {
			return true
		}
		i += size
	}
	return false
}
