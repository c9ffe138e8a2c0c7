package testimage

import (
	"os"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// NeedBusybox ends the test through testenv.Missing unless the static
// busybox that Busybox images are built from (DefaultBusybox) is installed.
func NeedBusybox(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(DefaultBusybox); err != nil {
		testenv.Missing(t, "%s: %v (apt-get install busybox-static)", DefaultBusybox, err)
	}
}
