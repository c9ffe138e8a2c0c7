package gossip

import (
	"strings"
	"testing"
)

func TestCheckQuorum(t *testing.T) {
	for _, tc := range []struct {
		expect, alive, needed int
		ok                    bool
		reason                string
	}{
		{0, 1, 0, true, "favours availability"},
		{3, 2, 2, true, "2 of 3"},
		{3, 1, 2, false, "no quorum: 1 of 3"},
		{4, 2, 3, false, "3 needed"},
		{5, 3, 3, true, "quorum"},
		{1, 1, 1, true, "quorum"},
	} {
		q := CheckQuorum(tc.expect, tc.alive)
		if q.OK != tc.ok || q.Needed != tc.needed || !strings.Contains(q.Reason, tc.reason) {
			t.Errorf("CheckQuorum(%d, %d) = %+v", tc.expect, tc.alive, q)
		}
	}
}
