package testenv

import (
	"fmt"
	"slices"
	"strings"
)

// DefaultImage is the image of a test workload that names none.
const DefaultImage = "busybox:1.36"

// Deployment is the manifest of a Deployment of one container for tests;
// YAML renders it. Zero fields take the defaults their comments give.
type Deployment struct {
	Name      string
	Namespace string // none (the default namespace) when ""
	Replicas  int
	// Strategy is YAML under spec, indented by 2 (a strategy or
	// minReadySeconds block).
	Strategy string
	Container
}

// Pod is the manifest of a bare Pod of one container for tests; YAML
// renders it.
type Pod struct {
	Name      string
	Namespace string // none (the default namespace) when ""
	Container
}

// Container is the one container of a test workload and the pod spec
// around it.
type Container struct {
	ContainerName string // "main" when ""
	Image         string // DefaultImage when ""
	// Command is the container's command as the items of a YAML flow
	// sequence (`"sleep", "3600"`); the image's own when "".
	Command string
	// Version, when set, is the value of a VERSION environment variable:
	// changing it changes the pod's spec and so replaces the pod.
	Version string
	Ports   []int // container ports
	// Grace is terminationGracePeriodSeconds; the default (30 s) when nil.
	Grace        *int
	NodeSelector map[string]string
	// Extra is YAML appended after the container: pod spec fields indented
	// by 6 (2 in a Pod), or further container fields indented by 10 (6).
	Extra string
}

// YAML renders the Deployment.
func (d Deployment) YAML() string {
	var b strings.Builder
	b.WriteString("apiVersion: apps/v1\nkind: Deployment\n")
	writeMetadata(&b, d.Name, d.Namespace)
	fmt.Fprintf(&b, "spec:\n  replicas: %d\n", d.Replicas)
	b.WriteString(d.Strategy)
	fmt.Fprintf(&b, "  selector:\n    matchLabels: {app: %s}\n", d.Name)
	fmt.Fprintf(&b, "  template:\n    metadata:\n      labels: {app: %s}\n    spec:\n", d.Name)
	d.Container.write(&b, "      ")
	return b.String()
}

// YAML renders the Pod.
func (p Pod) YAML() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\n")
	writeMetadata(&b, p.Name, p.Namespace)
	b.WriteString("spec:\n")
	p.Container.write(&b, "  ")
	return b.String()
}

// writeMetadata writes the metadata block of an object.
func writeMetadata(b *strings.Builder, name, namespace string) {
	fmt.Fprintf(b, "metadata:\n  name: %s\n", name)
	if namespace != "" {
		fmt.Fprintf(b, "  namespace: %s\n", namespace)
	}
}

// write writes the pod spec fields, each line indented by in.
func (c Container) write(b *strings.Builder, in string) {
	if c.Grace != nil {
		fmt.Fprintf(b, "%sterminationGracePeriodSeconds: %d\n", in, *c.Grace)
	}
	if len(c.NodeSelector) > 0 {
		keys := make([]string, 0, len(c.NodeSelector))
		for k := range c.NodeSelector {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintf(b, "%snodeSelector:\n", in)
		for _, k := range keys {
			fmt.Fprintf(b, "%s  %s: %q\n", in, k, c.NodeSelector[k])
		}
	}
	name, image := c.ContainerName, c.Image
	if name == "" {
		name = "main"
	}
	if image == "" {
		image = DefaultImage
	}
	fmt.Fprintf(b, "%scontainers:\n%s  - name: %s\n%s    image: %s\n", in, in, name, in, image)
	if c.Command != "" {
		fmt.Fprintf(b, "%s    command: [%s]\n", in, c.Command)
	}
	if c.Version != "" {
		fmt.Fprintf(b, "%s    env:\n%s      - {name: VERSION, value: %q}\n", in, in, c.Version)
	}
	if len(c.Ports) > 0 {
		fmt.Fprintf(b, "%s    ports:\n", in)
		for _, p := range c.Ports {
			fmt.Fprintf(b, "%s      - containerPort: %d\n", in, p)
		}
	}
	b.WriteString(c.Extra)
}
