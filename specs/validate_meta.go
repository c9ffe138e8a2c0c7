package specs

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// object validates the object of the check according to its kind.
func (c *check) object() {
	obj := c.it.obj
	meta := obj.Obj.(metav1.Object)
	c.name("metadata.name", obj.Name, obj.Kind)
	if kinds[obj.Kind].namespaced {
		for _, msg := range cleanMsgs(validation.IsDNS1123Label(obj.Namespace)) {
			c.errorf("metadata.namespace", "invalid namespace %q: %s", obj.Namespace, msg)
		}
	}
	c.labels("metadata.labels", meta.GetLabels())
	c.annotations("metadata.annotations", meta.GetAnnotations())
	switch o := obj.Obj.(type) {
	case *corev1.Pod:
		c.networksAnnotation("metadata.annotations", o.Annotations)
		c.podSpec("spec", &o.Spec, workloadPod)
	case *corev1.Service:
		c.service(o)
	case *corev1.Secret:
		c.secret(o)
	case *corev1.ConfigMap:
		c.configMap(o)
	case *corev1.PersistentVolumeClaim:
		c.pvc(o)
	case *Network:
		c.network(o)
	default:
		c.workload(o)
	}
}

// name checks metadata.name: DNS-1123 labels for kinds whose names become
// host names or interface names, DNS-1123 subdomains for the rest.
func (c *check) name(path, name, kind string) {
	if name == "" {
		c.errorf(path, "required")
		return
	}
	var msgs []string
	switch kind {
	case KindService, KindNamespace, KindNetwork, KindPod:
		msgs = cleanMsgs(validation.IsDNS1123Label(name))
	default:
		msgs = cleanMsgs(validation.IsDNS1123Subdomain(name))
	}
	for _, msg := range msgs {
		c.errorf(path, "invalid name %q: %s", name, msg)
	}
}

// labels checks label keys and values.
func (c *check) labels(path string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		for _, msg := range cleanMsgs(validation.IsQualifiedName(k)) {
			c.errorf(keyPath(path, k), "invalid label key %q: %s", k, msg)
		}
		for _, msg := range cleanMsgs(validation.IsValidLabelValue(labels[k])) {
			c.errorf(keyPath(path, k), "invalid label value %q: %s", labels[k], msg)
		}
	}
}

// annotations checks annotation keys and the total size.
func (c *check) annotations(path string, ann map[string]string) {
	total := 0
	for _, k := range sortedKeys(ann) {
		total += len(k) + len(ann[k])
		for _, msg := range cleanMsgs(validation.IsQualifiedName(strings.ToLower(k))) {
			c.errorf(keyPath(path, k), "invalid annotation key %q: %s", k, msg)
		}
	}
	if total > 256*1024 {
		c.errorf(path, "annotations total %d bytes, more than 256 KiB", total)
	}
}

// networksAnnotation checks the kelpie.dev/networks annotation and records
// each Network it names as a reference.
func (c *check) networksAnnotation(path string, ann map[string]string) {
	v, ok := ann[NetworksAnnotation]
	if !ok {
		return
	}
	p := keyPath(path, NetworksAnnotation)
	seen := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			c.errorf(p, "empty network name in %q", v)
			continue
		}
		if seen[name] {
			c.errorf(p, "network %q listed twice", name)
			continue
		}
		seen[name] = true
		c.ref(p, KindNetwork, name, "", false)
	}
}

// selectorMatches checks a workload selector against its template labels.
func (c *check) selector(path string, sel *metav1.LabelSelector, templateLabels map[string]string, templatePath string) {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		c.errorf(path, "required: a selector with matchLabels or matchExpressions")
		return
	}
	c.labels(joinPath(path, "matchLabels"), sel.MatchLabels)
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		c.errorf(path, "invalid selector: %v", err)
		return
	}
	if !s.Matches(labelSet(templateLabels)) {
		c.errorf(templatePath, "template labels {%s} do not match the selector %s", labelSet(templateLabels).String(), s.String())
	}
}
