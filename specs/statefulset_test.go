package specs

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// statefulDoc is a StatefulSet whose spec has extra (indented under spec)
// and one volume claim template named data; the template mounts it.
func statefulDoc(extra string) string {
	return "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec:\n  serviceName: web\n" + extra +
		"  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n" +
		"    spec: {containers: [{name: a, image: b, volumeMounts: [{name: data, mountPath: /data}]}]}\n" +
		"  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"
}

// TestStatefulSetAccepted: a StatefulSet loads with Kubernetes' defaults,
// and its claims and per-ordinal templates are named like Kubernetes'.
func TestStatefulSetAccepted(t *testing.T) {
	state := reviewMustLoad(t, statefulDoc("  replicas: 3\n  updateStrategy: {rollingUpdate: {partition: 2}}\n  persistentVolumeClaimRetentionPolicy: {whenScaled: Retain}\n  minReadySeconds: 5\n"))
	obj := state.Get(Key{Kind: KindStatefulSet, Namespace: "default", Name: "web"})
	if obj == nil {
		t.Fatal("no StatefulSet loaded")
	}
	ss := obj.Obj.(*appsv1.StatefulSet)
	if ss.Spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement || !StatefulSetOrderedReady(ss) {
		t.Errorf("podManagementPolicy %q, want the default OrderedReady", ss.Spec.PodManagementPolicy)
	}
	if rp := ss.Spec.PersistentVolumeClaimRetentionPolicy; rp.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("whenDeleted %q, want the default Retain", rp.WhenDeleted)
	}
	claims := StatefulSetClaims(ss, 2)
	if len(claims) != 1 || claims[0].Name != "data-web-2" || claims[0].Namespace != "default" {
		t.Fatalf("claims of ordinal 2: %+v", claims)
	}
	tmpl := StatefulSetPodTemplate(ss, 2)
	if v := tmpl.Spec.Volumes; len(v) != 1 || v[0].Name != "data" || v[0].PersistentVolumeClaim.ClaimName != "data-web-2" {
		t.Errorf("volumes of ordinal 2: %+v", v)
	}
	if len(ss.Spec.Template.Spec.Volumes) != 0 {
		t.Error("StatefulSetPodTemplate modified the StatefulSet")
	}
	if StatefulSetPodName("web", 10) != "web-10" {
		t.Error("pod name")
	}
}

// TestStatefulSetRefused: what kelpie does not do is refused, never
// ignored.
func TestStatefulSetRefused(t *testing.T) {
	for _, tc := range []struct{ name, extra, want string }{
		{"whenDeleted Delete", "  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete}\n", "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Delete is not supported by kelpie"},
		{"whenScaled Delete", "  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete}\n", "spec.persistentVolumeClaimRetentionPolicy.whenScaled: Delete is not supported by kelpie"},
		{"ordinals", "  ordinals: {start: 1}\n", "not supported by kelpie"},
		{"maxUnavailable", "  updateStrategy: {rollingUpdate: {maxUnavailable: 2}}\n", "not supported by kelpie"},
		{"unknown policy", "  podManagementPolicy: Burst\n", "spec.podManagementPolicy: unsupported value"},
		{"negative partition", "  updateStrategy: {rollingUpdate: {partition: -1}}\n", "spec.updateStrategy.rollingUpdate.partition"},
		{"OnDelete with rollingUpdate", "  updateStrategy: {type: OnDelete, rollingUpdate: {partition: 1}}\n", "spec.updateStrategy.rollingUpdate: may not be set"},
		{"bad serviceName", "  serviceName: Web_1\n", "spec.serviceName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := statefulDoc(tc.extra)
			if strings.Contains(tc.extra, "serviceName") {
				doc = strings.Replace(doc, "  serviceName: web\n", "", 1)
			}
			_, err := reviewLoad(t, doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"template and volume of one name",
			strings.Replace(statefulDoc(""), "    spec: {containers:", "    spec: {volumes: [{name: data, emptyDir: {}}], containers:", 1),
			"spec.volumeClaimTemplates[0].metadata.name: spec.template.spec.volumes also has a volume named \"data\""},
		{"mount of no volume",
			strings.Replace(statefulDoc(""), "{name: data, mountPath", "{name: logs, mountPath", 1),
			"spec.template.spec.containers[0].volumeMounts[0]"},
		{"template without storage",
			strings.Replace(statefulDoc(""), "resources: {requests: {storage: 1Gi}}", "resources: {}", 1),
			"spec.volumeClaimTemplates[0].spec.resources.requests: required"},
		{"name too long for a host name",
			strings.Replace(statefulDoc(""), "name: web}", "name: "+strings.Repeat("w", 62)+"}", 1),
			"metadata.name: a StatefulSet's pods are named and host-named NAME-ORDINAL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reviewLoad(t, tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want %q", err, tc.want)
			}
		})
	}
}
