// Package tlsconf builds the TLS configurations of kelpie's HTTP surfaces
// from PEM files: the agent's server (--tls-cert, --tls-key, and
// --tls-client-ca for mutual TLS with its peers) and its clients, which
// fetch git over https and pull from registry mirrors (--tls-ca to trust a
// site CA beside the system roots, the agent's own certificate as client
// certificate). It reads files and nothing else.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names the PEM files of a TLS setup; every field is optional.
type Files struct {
	// CertFile and KeyFile are this host's certificate and key: the
	// server's (--tls-cert, --tls-key), also presented as client
	// certificate to peers that ask for one.
	CertFile, KeyFile string
	// ClientCAFile lists the CAs whose client certificates the server
	// accepts (--tls-client-ca); with it, /mirror/ needs one.
	ClientCAFile string
	// CAFile lists CAs to trust, beside the system roots, for https
	// repositories, registry mirrors and agents (--tls-ca).
	CAFile string
}

// Validate checks that the files that go together are given together.
func (f Files) Validate() error {
	switch {
	case (f.CertFile == "") != (f.KeyFile == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case f.ClientCAFile != "" && f.CertFile == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is a TLS server's")
	}
	return nil
}

// Server reports whether the files make the agent serve TLS.
func (f Files) Server() bool { return f.CertFile != "" }

// ServerConfig is the agent server's configuration: TLS 1.2 at least, its
// certificate, and with ClientCAFile client certificates verified when a
// client presents one (the handler decides where one is required).
func (f Files) ServerConfig() (*tls.Config, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", f.CertFile, f.KeyFile, err)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if f.ClientCAFile != "" {
		pool, err := readPool(f.ClientCAFile, "--tls-client-ca", nil)
		if err != nil {
			return nil, err
		}
		c.ClientCAs, c.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return c, nil
}

// ClientConfig is the configuration of kelpie's clients: the system roots
// plus CAFile, and this host's certificate for peers that ask for one. It
// is nil when no file is given (the defaults apply).
func (f Files) ClientConfig() (*tls.Config, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.CAFile == "" && f.CertFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		sys, err := x509.SystemCertPool()
		if err != nil {
			sys = x509.NewCertPool()
		}
		if c.RootCAs, err = readPool(f.CAFile, "--tls-ca", sys); err != nil {
			return nil, err
		}
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", f.CertFile, f.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// PEM returns the CA bundle, certificate and key as bytes, for clients
// (go-git) that take PEM rather than a tls.Config. Missing files give nil.
func (f Files) PEM() (ca, cert, key []byte, err error) {
	read := func(path, flag string) ([]byte, error) {
		if path == "" {
			return nil, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", flag, err)
		}
		return b, nil
	}
	if ca, err = read(f.CAFile, "--tls-ca"); err != nil {
		return nil, nil, nil, err
	}
	if cert, err = read(f.CertFile, "--tls-cert"); err != nil {
		return nil, nil, nil, err
	}
	if key, err = read(f.KeyFile, "--tls-key"); err != nil {
		return nil, nil, nil, err
	}
	return ca, cert, key, nil
}

// readPool adds the certificates of a PEM file to pool (a new one when nil).
func readPool(path, flag string, pool *x509.CertPool) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", flag, err)
	}
	if pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flag, path)
	}
	return pool, nil
}
