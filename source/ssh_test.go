package source

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kelpie-dev/kelpie/internal/testenv"
)

// sshServer is a git host on 127.0.0.1 speaking ssh: it accepts one client
// key and runs git-upload-pack for `git-upload-pack '/path'`.
type sshServer struct {
	addr    string
	hostKey ssh.PublicKey
}

func newSSHKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func startSSHServer(t *testing.T, client ssh.PublicKey) *sshServer {
	t.Helper()
	host, _ := newSSHKey(t)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), client.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(host)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSSH(conn, cfg)
		}
	}()
	return &sshServer{addr: ln.Addr().String(), hostKey: host.PublicKey()}
}

func serveSSH(conn net.Conn, cfg *ssh.ServerConfig) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range chReqs {
				if req.Type != "exec" || len(req.Payload) < 4 {
					req.Reply(req.Type == "env", nil)
					continue
				}
				command := string(req.Payload[4:])
				verb, path, _ := strings.Cut(command, " ")
				if verb != "git-upload-pack" {
					req.Reply(false, nil)
					return
				}
				req.Reply(true, nil)
				cmd := exec.Command("git-upload-pack", strings.Trim(path, "'"))
				cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
				status := uint32(0)
				if err := cmd.Run(); err != nil {
					status = 1
				}
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], status)
				ch.SendRequest("exit-status", false, b[:])
				return
			}
		}()
	}
}

func TestFetchSSH(t *testing.T) {
	testenv.Binary(t, "git-upload-pack", "git")
	u := newUpstream(t)
	c1 := u.commitPush("a.yaml", "v1\n")

	clientKey, clientPEM := newSSHKey(t)
	otherKey, otherPEM := newSSHKey(t)
	srv := startSSHServer(t, clientKey.PublicKey())
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := write("id_ed25519", clientPEM)
	wrongKey := write("other", otherPEM)
	known := write("known_hosts", []byte(knownhosts.Line([]string{srv.addr}, srv.hostKey)+"\n"))
	wrongHost := write("wrong_hosts", []byte(knownhosts.Line([]string{srv.addr}, otherKey.PublicKey())+"\n"))
	otherHost := write("other_hosts", []byte(knownhosts.Line([]string{"example.com"}, srv.hostKey)+"\n"))
	url := fmt.Sprintf("ssh://git@%s%s", srv.addr, u.bare)

	r := newTestRemote(t, RemoteConfig{URLs: []string{url}, SSHKeyFile: key, KnownHostsFile: known})
	f := mustFetch(t, r, "", c1)
	if f.Source != fmt.Sprintf("ssh://%s%s", srv.addr, u.bare) {
		t.Errorf("Source = %q, want the URL without its user", f.Source)
	}
	if len(r.LocalPaths()) != 0 {
		t.Errorf("LocalPaths() = %q for an ssh URL", r.LocalPaths())
	}
	c2 := u.commitPush("a.yaml", "v2\n")
	mustFetch(t, r, c1, c2)

	for _, tt := range []struct {
		name       string
		key, known string
		want       string
	}{
		{"host key changed", key, wrongHost, "key mismatch"},
		{"host unknown", key, otherHost, "key is unknown"},
		{"client key refused", wrongKey, known, "unable to authenticate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRemote(t, RemoteConfig{URLs: []string{url}, SSHKeyFile: tt.key, KnownHostsFile: tt.known})
			fetchErr(t, r, "", nil, tt.want, srv.addr)
		})
	}
}
