package tlsconf_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/kelpie-dev/kelpie/internal/tlsconf"
	"github.com/kelpie-dev/kelpie/internal/tlsconf/tlstest"
)

func TestFiles(t *testing.T) {
	s := tlstest.New(t, "site")
	for _, c := range []struct {
		name string
		f    tlsconf.Files
		err  string
	}{
		{"nothing", tlsconf.Files{}, ""},
		{"server", tlsconf.Files{CertFile: s.ServerCert, KeyFile: s.ServerKey}, ""},
		{"cert without key", tlsconf.Files{CertFile: s.ServerCert}, "go together"},
		{"client CA without a server", tlsconf.Files{ClientCAFile: s.CA}, "needs --tls-cert"},
		{"mutual", tlsconf.Files{CertFile: s.ServerCert, KeyFile: s.ServerKey, ClientCAFile: s.CA, CAFile: s.CA}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.f.Validate()
			if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Fatalf("Validate = %v, want %q", err, c.err)
			}
		})
	}
	srv, err := tlsconf.Files{CertFile: s.ServerCert, KeyFile: s.ServerKey, ClientCAFile: s.CA}.ServerConfig()
	if err != nil || srv.ClientAuth != tls.VerifyClientCertIfGiven || srv.ClientCAs == nil || srv.MinVersion != tls.VersionTLS12 {
		t.Fatalf("ServerConfig = %+v, %v", srv, err)
	}
	cli, err := tlsconf.Files{CAFile: s.CA, CertFile: s.ClientCert, KeyFile: s.ClientKey}.ClientConfig()
	if err != nil || cli.RootCAs == nil || len(cli.Certificates) != 1 {
		t.Fatalf("ClientConfig = %+v, %v", cli, err)
	}
	if c, err := (tlsconf.Files{}).ClientConfig(); c != nil || err != nil {
		t.Errorf("ClientConfig of nothing = %v, %v; want nil, nil (Go's defaults)", c, err)
	}
	if _, err := (tlsconf.Files{CAFile: s.ServerKey}).ClientConfig(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a key as CA file: %v", err)
	}
}
