package reconciler

import "testing"

// TestReadOnlyManyClaimMountsReadOnly: a claim whose only access mode is
// ReadOnlyMany is mounted read-only by every pod; ReadWriteOnce and
// ReadWriteMany are read-write.
func TestReadOnlyManyClaimMountsReadOnly(t *testing.T) {
	for _, tc := range []struct {
		modes    string
		readOnly bool
	}{
		{"[ReadOnlyMany]", true},
		{"[ReadWriteOnce]", false},
		{"[ReadWriteMany]", false},
		{"[ReadOnlyMany, ReadWriteOnce]", false},
	} {
		state := load(t, map[string]string{"app.yaml": `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: ` + tc.modes + `
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  containers:
  - name: main
    image: busybox:1.36
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
`})
		d, notices := Expand(state, Host{Name: "h"})
		if len(d.Pods) != 1 || len(notices) != 0 {
			t.Fatalf("%s: pods %d, notices %v", tc.modes, len(d.Pods), notices)
		}
		if got := d.Pods[0].Containers[0].Mounts[0].ReadOnly; got != tc.readOnly {
			t.Errorf("accessModes %s: mount read-only %v, want %v", tc.modes, got, tc.readOnly)
		}
	}
}
