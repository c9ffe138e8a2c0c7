package agent

import (
	"testing"

	"github.com/kelpie-dev/kelpie/gossip"
)

// TestPeerURL: a forward goes to the API address a member advertises,
// on its gossip host when it advertises a port only; a member that
// advertises none (an older agent) is assumed on this agent's own port.
func TestPeerURL(t *testing.T) {
	a := &Agent{cfg: Config{Listen: "0.0.0.0:7070"}}
	for _, tc := range []struct {
		api, want string
	}{
		{api: "", want: "http://10.0.0.2:7070"},
		{api: ":7071", want: "http://10.0.0.2:7071"},
		{api: "192.168.5.5:8443", want: "http://192.168.5.5:8443"},
	} {
		u, err := a.peerURL(gossip.Member{Name: "b", Addr: "10.0.0.2:7946", Meta: gossip.Meta{APIAddr: tc.api}})
		if err != nil || u.String() != tc.want {
			t.Errorf("advertised %q: peer URL %v, %v; want %s", tc.api, u, err, tc.want)
		}
	}
}
