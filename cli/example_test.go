package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kelpie-dev/kelpie/internal/testenv"
	"github.com/kelpie-dev/kelpie/internal/testenv/nethost"
)

// TestApplyBundledExample applies examples/site, verbatim except for the
// namespace of its namespaced objects, with the test images: the web pods
// serve the ConfigMap's page, db writes to its claim, the sensor reader
// joins the sensors network, the CronJob (nightly) starts no Job during the
// test and is no notice (it is run, on its schedule), and
// the Secret's value is never printed.
func TestApplyBundledExample(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	testenv.Binary(t, "nsenter", "util-linux")
	// The Network "sensors" is the host's bridge kn-sensors on 10.77.0.0/24
	// whoever applies it: one test process at a time may.
	testenv.Lock(t, "network-sensors", 3*time.Minute)
	h, hc := newPrivateHost(t, addr, "site")
	// The example's objects are in namespace "default". The CNI plugins name
	// a pod's iptables chains after the network ("kelpie" on every host) and
	// "namespace_pod": another test's default/web-0 would share them, and
	// one's teardown would delete the other's rules. So every namespaced
	// object gets a namespace of this host's own.
	siteNamespace := fmt.Sprintf("sitetest-%d", hc.Octet)
	copyWithNamespace(t, "../examples/site", h.manifest, siteNamespace)

	var outputs []string
	run := func(args ...string) result {
		t.Helper()
		res := h.run(args...)
		outputs = append(outputs, res.stdout, res.stderr)
		return res
	}
	cronNotice := "CronJob " + siteNamespace + "/backup:" // any notice about it: it runs on its schedule
	res := run("plan")
	if res.code != 2 || !strings.Contains(res.stdout, "+ create pod "+siteNamespace+"/web-0") || strings.Contains(res.stdout, cronNotice) {
		t.Fatalf("plan before apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = run("apply")
	if res.code != 0 || strings.Contains(res.stdout, cronNotice) {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	t.Logf("apply:\n%s", res.stdout)

	res = run("ps", "-o", "json")
	var ps struct{ Pods []psPod }
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &ps) != nil {
		t.Fatalf("ps: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	reader := "sensor-reader-test-host"
	ips := map[string]string{}
	var names []string
	for _, p := range ps.Pods {
		names = append(names, p.Namespace+"/"+p.Name)
		ips[p.Name] = p.IP
		for _, c := range p.Containers {
			if c.State != "Running" {
				t.Errorf("pod %s container %s is %s", p.Name, c.Name, c.State)
			}
		}
	}
	sort.Strings(names)
	wantNames := []string{siteNamespace + "/db-0", siteNamespace + "/" + reader, siteNamespace + "/web-0", siteNamespace + "/web-1"}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Fatalf("pods %v, want %v (the nightly CronJob has no tick during the test)", names, wantNames)
	}

	for _, web := range []string{"web-0", "web-1"} {
		url := "http://" + net.JoinHostPort(ips[web], "8080") + "/"
		body, err := nethost.Get(url, 10*time.Second)
		if err != nil || !strings.Contains(body, "<h1>Hello from kelpie</h1>") {
			t.Errorf("%s: GET %s = %q, %v; want the ConfigMap's index.html", web, url, body, err)
		}
	}

	heartbeat := filepath.Join(hc.StateDir, "volumes", nethost.StateName(siteNamespace, "db-data"), "data", "heartbeat")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(heartbeat)
		if err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("db-0 wrote no heartbeat into its claim: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The reader's second interface: eth1 with an address of the sensors
	// network, seen inside its network namespace.
	netns := filepath.Join(hc.StateDir, "netns", nethost.StateName(siteNamespace, reader))
	out, err := exec.Command("nsenter", "--net="+netns, "ip", "-o", "-4", "addr", "show", "dev", "eth1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "inet 10.77.0.") {
		t.Errorf("%s's eth1 in %s: %v\n%s", reader, netns, err, out)
	}

	want := nethost.Want{
		Pods: map[string]nethost.WantPod{
			siteNamespace + "/web-0":     {Containers: []string{"httpd"}},
			siteNamespace + "/web-1":     {Containers: []string{"httpd"}},
			siteNamespace + "/db-0":      {Containers: []string{"db"}},
			siteNamespace + "/" + reader: {Containers: []string{"reader"}},
		},
		Networks: map[string][]string{"kelpie-net-sensors": {siteNamespace + "/" + reader}},
		Bridges:  map[string]int{"kn-sensors": 1},
	}
	if problems := hc.Settle(want); len(problems) > 0 {
		t.Errorf("host after apply:\n- %s", strings.Join(problems, "\n- "))
	}

	res = run("plan", "--prune", "-o", "json")
	var plan planJSON
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &plan) != nil || len(plan.Actions) != 0 {
		t.Errorf("plan after apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, n := range plan.Notices {
		if strings.Contains(n, cronNotice) {
			t.Errorf("plan -o json has a notice about the CronJob, which runs: %q", n)
		}
	}
	run("ps")
	run("logs", siteNamespace+"/db-0")
	run("apply")

	for _, secret := range []string{"change-me", "Y2hhbmdlLW1l"} { // the password, and base64 of it
		for _, o := range outputs {
			if strings.Contains(o, secret) {
				t.Errorf("the Secret's value %q was printed:\n%s", secret, o)
			}
		}
	}

	hc.Destroy()
	if _, err := net.InterfaceByName("kn-sensors"); err == nil {
		t.Errorf("bridge kn-sensors of the sensors network is left after prune")
	}
	if _, err := os.Stat(filepath.Join(hc.StateDir, "cni", "networks", "kelpie-net-sensors")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leases of the sensors network are left after prune: %v", err)
	}
	if _, err := os.Stat(heartbeat); err != nil {
		t.Errorf("prune deleted the claim's data: %v", err)
	}
}

// TestApplyHostPort checks a pod's hostPort answers from the host on the
// bridge's address, and stops answering when the pod is removed.
func TestApplyHostPort(t *testing.T) {
	addr := testenv.ContainerdAddress(t)
	h, hc := newPrivateHost(t, addr, "hp")
	ns := fmt.Sprintf("hostporttest-%d", hc.Octet)
	h.write(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: edge, namespace: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: nginx:1.7.9
    ports: [{containerPort: 80, hostPort: %d}]
`, ns, hc.HostPort))
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	url := "http://" + net.JoinHostPort(hc.Gateway, strconv.Itoa(hc.HostPort)) + "/"
	body, err := nethost.Get(url, 10*time.Second)
	if err != nil || !strings.Contains(body, "Welcome to nginx!") {
		t.Fatalf("GET %s = %q, %v", url, body, err)
	}
	if problems := hc.Settle(nethost.Want{Pods: map[string]nethost.WantPod{ns + "/edge": {Containers: []string{"httpd"}}}}); len(problems) > 0 {
		t.Errorf("host after apply:\n- %s", strings.Join(problems, "\n- "))
	}
	hc.Destroy()
	if body, err := nethost.Get(url, 0); err == nil {
		t.Errorf("GET %s answered %q after the pod was removed", url, body)
	}
}

// copyWithNamespace copies the manifest tree src to dst, byte for byte
// except that every namespaced object gets metadata.namespace ns: the line
// is inserted before the first key of its block-style metadata, at that
// key's indentation, where a YAML parser located it.
func copyWithNamespace(t *testing.T, src, dst, ns string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
			if b, err = insertNamespace(b, ns); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// insertNamespace adds "namespace: ns" to the metadata of every namespaced
// object in a multi-document YAML file and changes nothing else.
func insertNamespace(src []byte, ns string) ([]byte, error) {
	type insertion struct{ line, indent int }
	var at []insertion
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		root := doc.Content[0]
		kind := yamlMappingValue(root, "kind")
		if kind == nil || kind.Value == "Namespace" || kind.Value == "Network" { // cluster-scoped
			continue
		}
		meta := yamlMappingValue(root, "metadata")
		switch {
		case meta == nil || meta.Kind != yaml.MappingNode || len(meta.Content) == 0:
			return nil, fmt.Errorf("line %d: %s without metadata", kind.Line, kind.Value)
		case meta.Style&yaml.FlowStyle != 0:
			return nil, fmt.Errorf("line %d: flow-style metadata is not handled", meta.Line)
		case yamlMappingValue(meta, "namespace") != nil:
			return nil, fmt.Errorf("line %d: metadata has a namespace already", meta.Line)
		}
		first := meta.Content[0]
		at = append(at, insertion{line: first.Line, indent: first.Column - 1})
	}
	lines := strings.SplitAfter(string(src), "\n")
	sort.Slice(at, func(i, j int) bool { return at[i].line > at[j].line })
	for _, in := range at {
		line := strings.Repeat(" ", in.indent) + "namespace: " + ns + "\n"
		lines = append(lines[:in.line-1], append([]string{line}, lines[in.line-1:]...)...)
	}
	return []byte(strings.Join(lines, "")), nil
}

// yamlMappingValue returns the value of key in a YAML mapping node, or nil.
func yamlMappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
