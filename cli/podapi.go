package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kelpie-dev/kelpie/agent"
	"github.com/kelpie-dev/kelpie/internal/execwire"
	"github.com/kelpie-dev/kelpie/internal/tlsconf"
	"github.com/kelpie-dev/kelpie/runtime/host"
)

// podPath is the API path of a pod's log or exec.
func podPath(namespace, pod, what string) string {
	return "/api/v1/pods/" + url.PathEscape(namespace) + "/" + url.PathEscape(pod) + "/" + what
}

// agentClient is the HTTP client for --agent (its --tls-ca), with no
// overall timeout: a followed log and an exec last as long as they last.
func agentClient(c *cli.Context) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if ca := c.String("tls-ca"); ca != "" {
		tc, err := tlsconf.Files{CAFile: ca}.ClientConfig()
		if err != nil {
			return nil, usageErrorf(c, "invalid value %q for flag --tls-ca: %v", ca, err)
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr}, nil
}

// podRequest sends a log or exec request to the agent and returns its
// response when it has status want; any other is an error that quotes the
// agent.
func podRequest(ctx context.Context, c *cli.Context, method, path string, q url.Values, header http.Header, want int) (*http.Response, error) {
	u := agentURL(c, path) + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, usageErrorf(c, "invalid value %q for flag --agent: %v", c.String("agent"), err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if tok := apiToken(c); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	client, err := agentClient(c)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("talk to the agent: %w (is `kelpie agent` running with --listen %s?)", err, c.String("agent"))
	}
	if resp.StatusCode == want {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("%s %s: %s: pass the agent's API token with --api-token (KELPIE_API_TOKEN), or run as a user who can read %s", method, path, resp.Status, c.String("api-token-file"))
	}
	return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
}

// remoteLogs prints a pod's log through the agent's API.
func remoteLogs(c *cli.Context, namespace, pod string, opts agent.LogOptions) error {
	resp, err := podRequest(c.Context, c, http.MethodGet, podPath(namespace, pod, "log"), opts.Query(), nil, http.StatusOK)
	if err != nil {
		return fmt.Errorf("logs of %s/%s: %w", namespace, pod, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(c.App.Writer, resp.Body); err != nil && c.Context.Err() == nil {
		return fmt.Errorf("logs of %s/%s: %w", namespace, pod, err)
	}
	return nil
}

// remoteExec runs a command in a pod's container through the agent's API
// and returns its exit status.
func remoteExec(c *cli.Context, namespace, pod, container string, cmd []string, eio host.ExecIO) (int, error) {
	opts := agent.ExecOptions{Container: container, Command: cmd, Stdin: eio.Stdin != nil, TTY: eio.TTY, Width: eio.Size.Width, Height: eio.Size.Height}
	h := http.Header{}
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", execwire.Protocol)
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	resp, err := podRequest(ctx, c, http.MethodPost, podPath(namespace, pod, "exec"), opts.Query(), h, http.StatusSwitchingProtocols)
	if err != nil {
		return -1, fmt.Errorf("exec in %s/%s: %w", namespace, pod, err)
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return -1, fmt.Errorf("exec in %s/%s: the agent's upgraded connection is not writable", namespace, pod)
	}
	defer conn.Close()
	fw := execwire.NewWriter(conn)
	if eio.Stdin != nil {
		go func() {
			if _, err := io.Copy(fw.Stream(execwire.Stdin), eio.Stdin); err == nil {
				_ = fw.Write(execwire.StdinEOF, nil)
			}
		}()
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sz := <-eio.Resize:
				_ = fw.Write(execwire.Resize, execwire.Uint32s(sz.Width, sz.Height))
			case sig := <-eio.Signals:
				_ = fw.Write(execwire.Signal, execwire.Uint32s(uint32(sig)))
			}
		}
	}()
	stdout, stderr := eio.Stdout, eio.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	for {
		f, err := execwire.Read(conn)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the agent ended the session without the command's exit status")
			}
			return -1, fmt.Errorf("exec in %s/%s: %w", namespace, pod, err)
		}
		switch f.Type {
		case execwire.Stdout:
			_, err = stdout.Write(f.Payload)
		case execwire.Stderr:
			_, err = stderr.Write(f.Payload)
		case execwire.Exit:
			return execwire.ParseExitCode(f.Payload)
		case execwire.Error:
			return -1, errors.New(string(f.Payload))
		}
		if err != nil {
			return -1, fmt.Errorf("exec in %s/%s: %w", namespace, pod, err)
		}
	}
}
