package specs

import (
	"fmt"
	"slices"
	"strings"
)

// foreignKinds are kinds that have no meaning without a Kubernetes API
// server or a cloud: each is refused with why it has no effect in kelpie
// and what to do instead, so a repository shared with a Kubernetes cluster
// can be used as it is by skipping them (Options.SkipKinds, --skip-kind,
// skipKinds in .kelpie.yaml).
var foreignKinds = map[string]string{
	"ServiceAccount":          "kelpie has no API server: pods get no service account token, and who may change the site is who may push to its repository",
	"Role":                    "kelpie has no API server and no RBAC: access is git access (signed commits with --verify-keys)",
	"ClusterRole":             "kelpie has no API server and no RBAC: access is git access (signed commits with --verify-keys)",
	"RoleBinding":             "kelpie has no API server and no RBAC: access is git access (signed commits with --verify-keys)",
	"ClusterRoleBinding":      "kelpie has no API server and no RBAC: access is git access (signed commits with --verify-keys)",
	"StorageClass":            "a PersistentVolumeClaim is a local directory on the host that holds it; there are no storage classes to provision from",
	"PersistentVolume":        "a PersistentVolumeClaim gets a local volume on its host by itself; there are no PersistentVolumes to bind",
	"PodDisruptionBudget":     "kelpie evicts nothing: rolling updates and rebalancing replace at most maxUnavailable replicas of a Deployment at a time",
	"HorizontalPodAutoscaler": "kelpie has no metrics API to scale from; set spec.replicas in git",
	"Ingress":                 "kelpie runs no ingress controller; expose the Service as a NodePort, or run an ingress proxy as a Deployment with a hostPort",
	"ReplicationController":   "it is the oldest form of a Deployment, which kelpie runs: change it to apiVersion apps/v1, kind Deployment, with its selector under spec.selector.matchLabels",
}

// foreignKindMessage is the refusal of a kind with no meaning here; ok is
// false for a kind kelpie knows nothing about.
func foreignKindMessage(kind string) (string, bool) {
	why, ok := foreignKinds[kind]
	if !ok {
		return "", false
	}
	verb := "has no effect in kelpie"
	if kind == "ReplicationController" {
		verb = "is not run by kelpie"
	}
	return fmt.Sprintf("kind %s %s: %s; to keep it in the repository, exclude its file with %s or skip the kind (kelpie validate --skip-kind %s, or skipKinds in %s)",
		kind, verb, why, IgnoreFile, kind, ConfigFile), true
}

// Skipped is an object Load left out because its kind is skipped
// (Options.SkipKinds, or skipKinds in the manifests' .kelpie.yaml): it
// runs nothing, and plans list it so that it is never dropped silently.
type Skipped struct {
	APIVersion, Kind, Namespace, Name string
	// Pos is where the document starts.
	Pos Position
	// Why names where the skip comes from.
	Why string
}

// String formats the skipped object as "Kind NAMESPACE/NAME (FILE:LINE, WHY)".
func (s Skipped) String() string {
	name := s.Name
	if s.Namespace != "" {
		name = s.Namespace + "/" + name
	}
	return fmt.Sprintf("%s %s (%s:%d, %s)", s.Kind, name, s.Pos.File, s.Pos.Line, s.Why)
}

// skipSet is the kinds a load skips and why.
type skipSet map[string]string

// add records kinds, skipped because of why.
func (s skipSet) add(kinds []string, why string) {
	for _, k := range kinds {
		if k = strings.TrimSpace(k); k != "" {
			if _, ok := s[k]; !ok {
				s[k] = why
			}
		}
	}
}

// sortedKinds lists the skipped kinds.
func (s skipSet) sortedKinds() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
