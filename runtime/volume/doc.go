// Package volume makes and removes the host directories pods' volumes are
// bound from (Manager): emptyDir (on disk or tmpfs), projected ConfigMaps
// and Secrets, hostPath under an allow-list, and claims' local volumes,
// whose data only RemoveClaim ever deletes.
//
// It never talks to containerd or CNI and never decides which volumes a
// pod should have.
package volume
