package specs

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// statefulSet validates a (defaulted) StatefulSet.
func (c *check) statefulSet(o *appsv1.StatefulSet) {
	s := &o.Spec
	c.count("spec.replicas", s.Replicas, MaxReplicas)
	c.selector("spec.selector", s.Selector, s.Template.Labels, "spec.template.metadata.labels")
	// The last pod's name is its host name and its DNS label under the
	// governing Service.
	last := StatefulSetPodName(o.Name, max(int(deref32(s.Replicas, 1))-1, 0))
	if o.Name != "" && len(validation.IsDNS1123Label(last)) > 0 {
		c.errorf("metadata.name", "a StatefulSet's pods are named and host-named NAME-ORDINAL, which must be a DNS label (lower case letters, digits and '-', at most 63 characters); %q is not", last)
	}
	if s.ServiceName != "" {
		for _, msg := range cleanMsgs(validation.IsDNS1123Label(s.ServiceName)) {
			c.errorf("spec.serviceName", "invalid Service name %q: %s", s.ServiceName, msg)
		}
	}
	switch s.PodManagementPolicy {
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		c.errorf("spec.podManagementPolicy", "unsupported value %q: want OrderedReady or Parallel", s.PodManagementPolicy)
	}
	switch s.UpdateStrategy.Type {
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := s.UpdateStrategy.RollingUpdate; ru != nil {
			c.nonNegativePtr("spec.updateStrategy.rollingUpdate.partition", ru.Partition)
		}
	case appsv1.OnDeleteStatefulSetStrategyType:
		if s.UpdateStrategy.RollingUpdate != nil {
			c.errorf("spec.updateStrategy.rollingUpdate", "may not be set when updateStrategy type is OnDelete")
		}
	default:
		c.errorf("spec.updateStrategy.type", "unsupported value %q: want RollingUpdate or OnDelete", s.UpdateStrategy.Type)
	}
	if rp := s.PersistentVolumeClaimRetentionPolicy; rp != nil {
		for _, f := range []struct {
			path string
			v    appsv1.PersistentVolumeClaimRetentionPolicyType
		}{{"whenDeleted", rp.WhenDeleted}, {"whenScaled", rp.WhenScaled}} {
			p := joinPath("spec.persistentVolumeClaimRetentionPolicy", f.path)
			switch f.v {
			case appsv1.RetainPersistentVolumeClaimRetentionPolicyType:
			case appsv1.DeletePersistentVolumeClaimRetentionPolicyType:
				c.errorf(p, "Delete is not supported by kelpie: a claim's data stays on its host until an operator removes it (kelpie never deletes volume data); use Retain")
			default:
				c.errorf(p, "unsupported value %q: want Retain or Delete", f.v)
			}
		}
	}
	c.nonNegative("spec.minReadySeconds", int64(s.MinReadySeconds))
	c.nonNegativePtr("spec.revisionHistoryLimit", s.RevisionHistoryLimit)
	c.template("spec.template", &s.Template.Annotations, workloadService, s.Template.Labels)

	// The pod spec is checked with each volume claim template as a volume
	// of its name (what the containers mount); the claims themselves are
	// made from the templates, so there is nothing to refer to.
	spec := s.Template.Spec.DeepCopy()
	declared := map[string]bool{}
	for i := range spec.Volumes {
		declared[spec.Volumes[i].Name] = true
	}
	seen := map[string]bool{}
	for i := range s.VolumeClaimTemplates {
		t := &s.VolumeClaimTemplates[i]
		p := indexPath("spec.volumeClaimTemplates", i)
		switch {
		case t.Name == "":
			c.errorf(joinPath(p, "metadata.name"), "required")
		case len(validation.IsDNS1123Label(t.Name)) > 0:
			for _, msg := range cleanMsgs(validation.IsDNS1123Label(t.Name)) {
				c.errorf(joinPath(p, "metadata.name"), "invalid name %q: %s", t.Name, msg)
			}
		case seen[t.Name]:
			c.errorf(joinPath(p, "metadata.name"), "duplicate volume claim template %q", t.Name)
		case declared[t.Name]:
			c.errorf(joinPath(p, "metadata.name"), "spec.template.spec.volumes also has a volume named %q: rename one of them", t.Name)
		default:
			if claim := StatefulSetClaimName(t.Name, o.Name, max(int(deref32(s.Replicas, 1))-1, 0)); len(validation.IsDNS1123Subdomain(claim)) > 0 {
				c.errorf(joinPath(p, "metadata.name"), "the claims are named TEMPLATE-NAME-ORDINAL; %q is not a valid name", claim)
			}
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}
		seen[t.Name] = true
		if t.Namespace != "" && t.Namespace != o.Namespace {
			c.errorf(joinPath(p, "metadata.namespace"), "a claim is made in the StatefulSet's namespace %q; leave it out", o.Namespace)
		}
		c.labels(joinPath(p, "metadata.labels"), t.Labels)
		c.pvcAt(p, t)
	}
	c.podSpec("spec.template.spec", spec, workloadService)
}
