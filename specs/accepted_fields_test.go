package specs

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fieldUse says what one accepted field does. Exactly one of uses,
// informational and gap is set.
type fieldUse struct {
	// uses are "DIR:TEXT" pairs: TEXT occurs in a non-test .go file of the
	// package in directory DIR (relative to the repository root). Each
	// names the place the field is read to do what it does (the resolver,
	// the scheduler, the Job controller, ...), not a mere copy.
	uses []string
	// informational says why the field has no effect in kelpie, and why
	// that is right (docs/manifests.md lists these).
	informational string
	// gap says what kelpie does not yet do with a field it accepts: a
	// known hole, to implement or refuse with "not supported by kelpie".
	gap string
}

// Reasons shared by many entries.
const (
	loaderKind  = "specs:topScalar(root, \"kind\")"       // the loader picks the Go type by kind
	loaderAPI   = "specs:topScalar(root, \"apiVersion\")" // and checks the apiVersion of that kind
	loaderMeta  = "specs:meta := v.(metav1.Object)"       // and takes the object's identity from metadata
	selectorWhy = "checked to select the pod template's labels, as apps/v1 requires; kelpie finds a workload's pods by its own owner labels, never by selector"
)

// fieldUses classifies every (type, field) pair of supportedFields, keyed
// "TypeName.jsonField", grouped as supported.go groups them.
var fieldUses = map[string]fieldUse{
	"ObjectMeta.name":              {uses: []string{"specs:meta.GetName()"}},
	"ObjectMeta.namespace":         {uses: []string{"specs:meta.GetNamespace()"}},
	"ObjectMeta.labels":            {uses: []string{"reconciler:maps.Clone(b.tmpl.Labels)"}},
	"ObjectMeta.annotations":       {uses: []string{"reconciler:tmpl.Annotations[specs.NetworksAnnotation]"}},
	"ObjectMeta.creationTimestamp": {informational: "set by the Kubernetes API server; accepted so that exported manifests load, and ignored"},

	"Pod.apiVersion": {uses: []string{loaderAPI}},
	"Pod.kind":       {uses: []string{loaderKind}},
	"Pod.metadata":   {uses: []string{loaderMeta}},
	"Pod.spec":       {uses: []string{"reconciler:specs.PodTemplate(o)"}},

	"PodTemplateSpec.metadata": {uses: []string{"reconciler:b.tmpl.Labels"}},
	"PodTemplateSpec.spec":     {uses: []string{"reconciler:s := &b.tmpl.Spec"}},

	"PodSpec.containers":                    {uses: []string{"reconciler:s.Containers"}},
	"PodSpec.initContainers":                {uses: []string{"reconciler:s.InitContainers"}},
	"PodSpec.volumes":                       {uses: []string{"reconciler:b.volumes(p.Namespace, s.Volumes)"}},
	"PodSpec.restartPolicy":                 {uses: []string{"reconciler:RestartPolicy(s.RestartPolicy)"}},
	"PodSpec.nodeSelector":                  {uses: []string{"scheduler:spec.NodeSelector", "reconciler:tmpl.Spec.NodeSelector"}},
	"PodSpec.hostNetwork":                   {uses: []string{"reconciler:s.HostNetwork"}},
	"PodSpec.terminationGracePeriodSeconds": {uses: []string{"reconciler:s.TerminationGracePeriodSeconds"}},
	"PodSpec.securityContext":               {uses: []string{"reconciler:security(b.tmpl.Spec.SecurityContext"}},
	"PodSpec.enableServiceLinks":            {uses: []string{"reconciler:s.EnableServiceLinks == nil || *s.EnableServiceLinks"}},

	"Container.name":            {uses: []string{"reconciler:c.Name"}},
	"Container.image":           {uses: []string{"reconciler:c.Image"}},
	"Container.command":         {uses: []string{"reconciler:expandAll(c.Command, vars)"}},
	"Container.args":            {uses: []string{"reconciler:expandAll(c.Args, vars)"}},
	"Container.env":             {uses: []string{"reconciler:range c.Env"}},
	"Container.envFrom":         {uses: []string{"reconciler:range c.EnvFrom"}},
	"Container.workingDir":      {uses: []string{"reconciler:c.WorkingDir"}},
	"Container.ports":           {uses: []string{"reconciler:range c.Ports"}},
	"Container.volumeMounts":    {uses: []string{"reconciler:range c.VolumeMounts"}},
	"Container.resources":       {uses: []string{"reconciler:resources(c.Resources)", "scheduler:r.Requests[corev1.ResourceCPU]"}},
	"Container.livenessProbe":   {uses: []string{"reconciler:probe(c.LivenessProbe, c.Ports)"}},
	"Container.readinessProbe":  {uses: []string{"reconciler:probe(c.ReadinessProbe, c.Ports)"}},
	"Container.startupProbe":    {uses: []string{"reconciler:probe(c.StartupProbe, c.Ports)"}},
	"Container.securityContext": {uses: []string{"reconciler:c.SecurityContext)"}},
	"Container.imagePullPolicy": {uses: []string{"reconciler:PullPolicy(c.ImagePullPolicy)"}},

	"EnvVar.name":      {uses: []string{"reconciler:EnvVar{Name: e.Name"}},
	"EnvVar.value":     {uses: []string{"reconciler:expand(e.Value, l.lookup)"}},
	"EnvVar.valueFrom": {uses: []string{"reconciler:e.ValueFrom"}},

	"EnvVarSource.fieldRef":        {uses: []string{"reconciler:vf.FieldRef"}},
	"EnvVarSource.configMapKeyRef": {uses: []string{"reconciler:vf.ConfigMapKeyRef"}},
	"EnvVarSource.secretKeyRef":    {uses: []string{"reconciler:vf.SecretKeyRef"}},

	"ObjectFieldSelector.apiVersion": {informational: "only v1 is valid (validated), the version metadata.name and metadata.namespace are read in"},
	"ObjectFieldSelector.fieldPath":  {uses: []string{"reconciler:vf.FieldRef.FieldPath"}},

	"ConfigMapKeySelector.name":     {uses: []string{"reconciler:lookupConfigMap(b.state, namespace, r.Name)"}},
	"ConfigMapKeySelector.key":      {uses: []string{"reconciler:configMapValue(cm, r.Key)"}},
	"ConfigMapKeySelector.optional": {uses: []string{"reconciler:isOptional(r.Optional)"}},

	"SecretKeySelector.name":     {uses: []string{"reconciler:lookupSecret(b.state, namespace, r.Name)"}},
	"SecretKeySelector.key":      {uses: []string{"reconciler:s.Data[r.Key]"}},
	"SecretKeySelector.optional": {uses: []string{"reconciler:isOptional(r.Optional)"}},

	"EnvFromSource.prefix":       {uses: []string{"reconciler:src.Prefix+k"}},
	"EnvFromSource.configMapRef": {uses: []string{"reconciler:src.ConfigMapRef != nil"}},
	"EnvFromSource.secretRef":    {uses: []string{"reconciler:src.SecretRef != nil"}},

	"ConfigMapEnvSource.name":     {uses: []string{"reconciler:src.ConfigMapRef.Name"}},
	"ConfigMapEnvSource.optional": {uses: []string{"reconciler:isOptional(src.ConfigMapRef.Optional)"}},
	"SecretEnvSource.name":        {uses: []string{"reconciler:src.SecretRef.Name"}},
	"SecretEnvSource.optional":    {uses: []string{"reconciler:isOptional(src.SecretRef.Optional)"}},

	"ContainerPort.name":          {uses: []string{"reconciler:p.Name == port.StrVal", "netplan:cp.Name == tp.StrVal"}},
	"ContainerPort.containerPort": {uses: []string{"reconciler:ContainerPort: port.ContainerPort", "netplan:cp.ContainerPort"}},
	"ContainerPort.hostPort":      {uses: []string{"reconciler:HostPort: port.HostPort", "scheduler:p.HostPort"}},
	"ContainerPort.protocol":      {uses: []string{"reconciler:string(port.Protocol)"}},

	"VolumeMount.name":      {uses: []string{"reconciler:Volume: m.Name"}},
	"VolumeMount.mountPath": {uses: []string{"reconciler:m.MountPath"}},
	"VolumeMount.readOnly":  {uses: []string{"reconciler:m.ReadOnly"}},
	"VolumeMount.subPath":   {uses: []string{"reconciler:m.SubPath"}},

	"ResourceRequirements.limits":   {uses: []string{"reconciler:r.Limits[corev1.ResourceMemory]", "scheduler:r.Limits[corev1.ResourceCPU]"}},
	"ResourceRequirements.requests": {uses: []string{"reconciler:r.Requests[corev1.ResourceMemory]", "scheduler:r.Requests[corev1.ResourceMemory]"}},

	"Probe.exec":                          {uses: []string{"reconciler:p.Exec != nil"}},
	"Probe.grpc":                          {uses: []string{"reconciler:p.GRPC != nil"}},
	"Probe.terminationGracePeriodSeconds": {uses: []string{"reconciler:p.TerminationGracePeriodSeconds"}},
	"GRPCAction.port":                     {uses: []string{"reconciler:int(p.GRPC.Port)"}},
	"GRPCAction.service":                  {uses: []string{"reconciler:*p.GRPC.Service"}},
	"Probe.httpGet":                       {uses: []string{"reconciler:p.HTTPGet != nil"}},
	"Probe.tcpSocket":                     {uses: []string{"reconciler:p.TCPSocket != nil"}},
	"Probe.initialDelaySeconds":           {uses: []string{"reconciler:seconds(p.InitialDelaySeconds)", "workload:seconds(p.InitialDelaySeconds)"}},
	"Probe.timeoutSeconds":                {uses: []string{"reconciler:seconds(p.TimeoutSeconds)", "workload:seconds(p.TimeoutSeconds)"}},
	"Probe.periodSeconds":                 {uses: []string{"reconciler:seconds(p.PeriodSeconds)", "workload:seconds(p.PeriodSeconds)"}},
	"Probe.successThreshold":              {uses: []string{"reconciler:int(p.SuccessThreshold)", "workload:int(p.SuccessThreshold)"}},
	"Probe.failureThreshold":              {uses: []string{"reconciler:int(p.FailureThreshold)", "workload:int(p.FailureThreshold)"}},

	"ExecAction.command":        {uses: []string{"reconciler:p.Exec.Command"}},
	"HTTPGetAction.path":        {uses: []string{"reconciler:p.HTTPGet.Path"}},
	"HTTPGetAction.port":        {uses: []string{"reconciler:portNumber(p.HTTPGet.Port, ports)"}},
	"HTTPGetAction.scheme":      {uses: []string{"reconciler:p.HTTPGet.Scheme"}},
	"HTTPGetAction.httpHeaders": {uses: []string{"reconciler:p.HTTPGet.HTTPHeaders"}},
	"HTTPHeader.name":           {uses: []string{"reconciler:Header{Name: hd.Name"}},
	"HTTPHeader.value":          {uses: []string{"reconciler:Value: hd.Value"}},
	"TCPSocketAction.port":      {uses: []string{"reconciler:portNumber(p.TCPSocket.Port, ports)"}},

	"SecurityContext.runAsUser":                {uses: []string{"reconciler:clonePtr(c.RunAsUser)"}},
	"SecurityContext.runAsGroup":               {uses: []string{"reconciler:clonePtr(c.RunAsGroup)"}},
	"SecurityContext.runAsNonRoot":             {uses: []string{"reconciler:*c.RunAsNonRoot"}},
	"SecurityContext.readOnlyRootFilesystem":   {uses: []string{"reconciler:*c.ReadOnlyRootFilesystem"}},
	"SecurityContext.privileged":               {uses: []string{"reconciler:*c.Privileged"}},
	"SecurityContext.allowPrivilegeEscalation": {uses: []string{"reconciler:clonePtr(c.AllowPrivilegeEscalation)"}},
	"SecurityContext.capabilities":             {uses: []string{"reconciler:c.Capabilities"}},
	"SecurityContext.seccompProfile":           {uses: []string{"reconciler:c.SeccompProfile"}},

	"Capabilities.add":    {uses: []string{"reconciler:range caps.Add"}},
	"Capabilities.drop":   {uses: []string{"reconciler:range caps.Drop"}},
	"SeccompProfile.type": {uses: []string{"reconciler:sp.Type == corev1.SeccompProfileTypeUnconfined"}},

	"PodSecurityContext.runAsUser":          {uses: []string{"reconciler:clonePtr(pod.RunAsUser)"}},
	"PodSecurityContext.runAsGroup":         {uses: []string{"reconciler:clonePtr(pod.RunAsGroup)"}},
	"PodSecurityContext.runAsNonRoot":       {uses: []string{"reconciler:*pod.RunAsNonRoot"}},
	"PodSecurityContext.fsGroup":            {uses: []string{"reconciler:clonePtr(sc.FSGroup)", "reconciler:*pod.FSGroup"}},
	"PodSecurityContext.supplementalGroups": {uses: []string{"reconciler:slices.Clone(pod.SupplementalGroups)"}},
	"PodSecurityContext.seccompProfile":     {uses: []string{"reconciler:pod.SeccompProfile.Type"}},

	"Volume.name":                  {uses: []string{"reconciler:Volume{Name: v.Name"}},
	"Volume.emptyDir":              {uses: []string{"reconciler:v.EmptyDir != nil"}},
	"Volume.hostPath":              {uses: []string{"reconciler:v.HostPath != nil"}},
	"Volume.configMap":             {uses: []string{"reconciler:b.configMapVolume(namespace, v.ConfigMap)"}},
	"Volume.secret":                {uses: []string{"reconciler:b.secretVolume(namespace, v.Secret)"}},
	"Volume.persistentVolumeClaim": {uses: []string{"reconciler:v.PersistentVolumeClaim != nil", "scheduler:pvc.ClaimName"}},

	"EmptyDirVolumeSource.medium":    {uses: []string{"reconciler:v.EmptyDir.Medium", "runtime/volume:ed.Medium"}},
	"EmptyDirVolumeSource.sizeLimit": {uses: []string{"reconciler:v.EmptyDir.SizeLimit", "runtime/volume:ed.SizeLimit"}},
	"HostPathVolumeSource.path":      {uses: []string{"reconciler:v.HostPath.Path"}},
	"HostPathVolumeSource.type":      {uses: []string{"reconciler:v.HostPath.Type"}},

	"ConfigMapVolumeSource.name":        {uses: []string{"reconciler:lookupConfigMap(b.state, namespace, v.Name)"}},
	"ConfigMapVolumeSource.items":       {uses: []string{"reconciler:v.Items, v.DefaultMode"}},
	"ConfigMapVolumeSource.defaultMode": {uses: []string{"reconciler:v.Items, v.DefaultMode"}},
	"ConfigMapVolumeSource.optional":    {uses: []string{"reconciler:optional := v.Optional != nil"}},
	"SecretVolumeSource.secretName":     {uses: []string{"reconciler:lookupSecret(b.state, namespace, v.SecretName)"}},
	"SecretVolumeSource.items":          {uses: []string{"reconciler:v.Items, v.DefaultMode"}},
	"SecretVolumeSource.defaultMode":    {uses: []string{"reconciler:v.Items, v.DefaultMode"}},
	"SecretVolumeSource.optional":       {uses: []string{"reconciler:optional := v.Optional != nil"}},
	"KeyToPath.key":                     {uses: []string{"reconciler:get(it.Key)"}},
	"KeyToPath.path":                    {uses: []string{"reconciler:Path: it.Path"}},
	"KeyToPath.mode":                    {uses: []string{"reconciler:os.FileMode(*it.Mode)"}},

	"PersistentVolumeClaimVolumeSource.claimName": {uses: []string{"reconciler:v.PersistentVolumeClaim.ClaimName", "scheduler:pvc.ClaimName"}},
	"PersistentVolumeClaimVolumeSource.readOnly":  {uses: []string{"reconciler:v.PersistentVolumeClaim.ReadOnly"}},

	"LabelSelector.matchLabels":         {informational: selectorWhy},
	"LabelSelector.matchExpressions":    {informational: selectorWhy},
	"LabelSelectorRequirement.key":      {informational: selectorWhy},
	"LabelSelectorRequirement.operator": {informational: selectorWhy},
	"LabelSelectorRequirement.values":   {informational: selectorWhy},

	"Deployment.apiVersion": {uses: []string{loaderAPI}},
	"Deployment.kind":       {uses: []string{loaderKind}},
	"Deployment.metadata":   {uses: []string{loaderMeta}},
	"Deployment.spec":       {uses: []string{"reconciler:rolloutOf(o, replicas)"}},

	"DeploymentSpec.replicas":                {uses: []string{"reconciler:*o.Spec.Replicas", "scheduler:*o.Spec.Replicas"}},
	"DeploymentSpec.selector":                {informational: selectorWhy},
	"DeploymentSpec.template":                {uses: []string{"reconciler:e.workload(obj, &o.Spec.Template, replicas"}},
	"DeploymentSpec.strategy":                {uses: []string{"reconciler:s := d.Spec.Strategy"}},
	"DeploymentSpec.minReadySeconds":         {uses: []string{"reconciler:d.Spec.MinReadySeconds"}},
	"DeploymentSpec.progressDeadlineSeconds": {uses: []string{"reconciler:o.Spec.ProgressDeadlineSeconds", "scheduler:now.Sub(m.since) >= o.Deadline"}},
	"DeploymentSpec.revisionHistoryLimit":    {informational: "kelpie keeps no old ReplicaSets to roll back to: the previous revision is the previous git commit"},

	"DeploymentStrategy.type":                {uses: []string{"reconciler:s.Type == appsv1.RecreateDeploymentStrategyType"}},
	"DeploymentStrategy.rollingUpdate":       {uses: []string{"reconciler:ru := s.RollingUpdate"}},
	"RollingUpdateDeployment.maxUnavailable": {uses: []string{"reconciler:*ru.MaxUnavailable"}},
	"RollingUpdateDeployment.maxSurge":       {uses: []string{"reconciler:*ru.MaxSurge"}},

	"DaemonSet.apiVersion": {uses: []string{loaderAPI}},
	"DaemonSet.kind":       {uses: []string{loaderKind}},
	"DaemonSet.metadata":   {uses: []string{loaderMeta}},
	"DaemonSet.spec":       {uses: []string{"scheduler:ds.Spec.Template.Spec.NodeSelector"}},

	"DaemonSetSpec.selector":             {informational: selectorWhy},
	"DaemonSetSpec.template":             {uses: []string{"reconciler:e.workload(obj, &o.Spec.Template, 1, daemonSetRollout(o))"}},
	"DaemonSetSpec.updateStrategy":       {uses: []string{"reconciler:o.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType"}},
	"DaemonSetSpec.minReadySeconds":      {uses: []string{"reconciler:time.Duration(o.Spec.MinReadySeconds)", "agent:p.ReadySince.Add(minReady)"}},
	"DaemonSetSpec.revisionHistoryLimit": {informational: "kelpie keeps no ControllerRevisions to roll back to: the previous revision is the previous git commit"},

	"DaemonSetUpdateStrategy.type":          {uses: []string{"reconciler:appsv1.OnDeleteDaemonSetStrategyType"}}, // OnDelete keeps the old pod until it stops (Rollout.OnDelete); RollingUpdate is paced across hosts by the leader
	"DaemonSetUpdateStrategy.rollingUpdate": {uses: []string{"reconciler:ru := o.Spec.UpdateStrategy.RollingUpdate"}},
	"RollingUpdateDaemonSet.maxUnavailable": {uses: []string{"reconciler:w.MaxUnavailable = ru.MaxUnavailable", "scheduler:intstr.GetScaledValueFromIntOrPercent(v, hosts, true)"}},
	"RollingUpdateDaemonSet.maxSurge":       {informational: "only 0 is accepted (anything else is refused as not supported by kelpie): each host replaces its DaemonSet pod in place"},

	"StatefulSet.apiVersion": {uses: []string{loaderAPI}},
	"StatefulSet.kind":       {uses: []string{loaderKind}},
	"StatefulSet.metadata":   {uses: []string{loaderMeta}},
	"StatefulSet.spec":       {uses: []string{"reconciler:statefulRollout(o, replicas)"}},

	"StatefulSetSpec.replicas":                             {uses: []string{"reconciler:replicas = int(*o.Spec.Replicas)", "scheduler:n = int(*o.Spec.Replicas)"}},
	"StatefulSetSpec.selector":                             {informational: selectorWhy},
	"StatefulSetSpec.template":                             {uses: []string{"reconciler:e.workloadWith(obj, &o.Spec.Template", "specs:ss.Spec.Template.DeepCopy()"}},
	"StatefulSetSpec.volumeClaimTemplates":                 {uses: []string{"specs:range ss.Spec.VolumeClaimTemplates", "scheduler:len(o.Spec.VolumeClaimTemplates) > 0"}},
	"StatefulSetSpec.serviceName":                          {uses: []string{"reconciler:p.Subdomain = o.Spec.ServiceName", "netplan:p.Subdomain == svc"}},
	"StatefulSetSpec.podManagementPolicy":                  {uses: []string{"specs:ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement", "reconciler:if r.OrderedReady {"}},
	"StatefulSetSpec.updateStrategy":                       {uses: []string{"reconciler:switch o.Spec.UpdateStrategy.Type"}},
	"StatefulSetSpec.revisionHistoryLimit":                 {informational: "kelpie keeps no ControllerRevisions to roll back to: the previous revision is the previous git commit"},
	"StatefulSetSpec.minReadySeconds":                      {uses: []string{"reconciler:time.Duration(o.Spec.MinReadySeconds) * time.Second"}},
	"StatefulSetSpec.persistentVolumeClaimRetentionPolicy": {informational: "only Retain is accepted (Delete is refused as not supported by kelpie): no plan deletes a claim's data, which is what Retain asks"},

	"StatefulSetUpdateStrategy.type":             {uses: []string{"reconciler:appsv1.OnDeleteStatefulSetStrategyType"}},
	"StatefulSetUpdateStrategy.rollingUpdate":    {uses: []string{"reconciler:ru := o.Spec.UpdateStrategy.RollingUpdate"}},
	"RollingUpdateStatefulSetStrategy.partition": {uses: []string{"reconciler:r.Partition = int(*ru.Partition)", "reconciler:d.Ordinal < d.Rollout.Partition"}},

	"StatefulSetPersistentVolumeClaimRetentionPolicy.whenDeleted": {informational: "only Retain is accepted (Delete is refused as not supported by kelpie): a removed StatefulSet's claims keep their data on their hosts"},
	"StatefulSetPersistentVolumeClaimRetentionPolicy.whenScaled":  {informational: "only Retain is accepted (Delete is refused as not supported by kelpie): scaling down keeps the claims of the removed ordinals, which scaling up uses again"},

	"Job.apiVersion": {uses: []string{loaderAPI}},
	"Job.kind":       {uses: []string{loaderKind}},
	"Job.metadata":   {uses: []string{loaderMeta}},
	"Job.spec":       {uses: []string{"workload:Spec: j.Spec"}},

	"JobSpec.parallelism":             {uses: []string{"workload:s.job.Spec.Parallelism"}},
	"JobSpec.completions":             {uses: []string{"workload:s.job.Spec.Completions"}},
	"JobSpec.activeDeadlineSeconds":   {uses: []string{"workload:s.job.Spec.ActiveDeadlineSeconds"}},
	"JobSpec.backoffLimit":            {uses: []string{"workload:s.job.Spec.BackoffLimit"}},
	"JobSpec.ttlSecondsAfterFinished": {uses: []string{"workload:s.job.Spec.TTLSecondsAfterFinished"}},
	"JobSpec.template":                {uses: []string{"reconciler:&o.Spec.Template", "workload:s.job.Spec.Template.Spec.RestartPolicy"}},
	"JobSpec.podFailurePolicy":        {uses: []string{"workload:s.job.Spec.PodFailurePolicy"}},
	"JobSpec.completionMode":          {uses: []string{"workload:*j.Spec.CompletionMode == batchv1.IndexedCompletion"}},

	"CronJob.apiVersion": {uses: []string{loaderAPI}},
	"CronJob.kind":       {uses: []string{loaderKind}},
	"CronJob.metadata":   {uses: []string{loaderMeta}},
	"CronJob.spec":       {uses: []string{"workload:ParseSchedule(&cj.Spec)"}},

	"JobTemplateSpec.metadata": {informational: "the labels and annotations of the Jobs a CronJob makes: those Jobs are records in kelpie, not objects with metadata; their pods take theirs from jobTemplate.spec.template.metadata"},
	"JobTemplateSpec.spec":     {uses: []string{"workload:cj.Spec.JobTemplate.Spec.DeepCopy()"}},

	"CronJobSpec.schedule":                   {uses: []string{"workload:strings.TrimSpace(spec.Schedule)"}},
	"CronJobSpec.timeZone":                   {uses: []string{"workload:spec.TimeZone"}},
	"CronJobSpec.startingDeadlineSeconds":    {uses: []string{"workload:cj.Spec.StartingDeadlineSeconds"}},
	"CronJobSpec.concurrencyPolicy":          {uses: []string{"workload:cj.Spec.ConcurrencyPolicy"}},
	"CronJobSpec.suspend":                    {uses: []string{"workload:isTrue(cj.Spec.Suspend)"}},
	"CronJobSpec.jobTemplate":                {uses: []string{"workload:cj.Spec.JobTemplate.Spec", "reconciler:o.Spec.JobTemplate.Spec.Template"}},
	"CronJobSpec.successfulJobsHistoryLimit": {uses: []string{"workload:cj.Spec.SuccessfulJobsHistoryLimit"}},
	"CronJobSpec.failedJobsHistoryLimit":     {uses: []string{"workload:cj.Spec.FailedJobsHistoryLimit"}},

	"PodFailurePolicy.rules":                               {uses: []string{"workload:range policy.Rules"}},
	"PodFailurePolicyRule.action":                          {uses: []string{"workload:a := rule.Action"}},
	"PodFailurePolicyRule.onExitCodes":                     {uses: []string{"workload:rule.OnExitCodes"}},
	"PodFailurePolicyRule.onPodConditions":                 {uses: []string{"workload:range rule.OnPodConditions"}},
	"PodFailurePolicyOnExitCodesRequirement.containerName": {uses: []string{"workload:*r.ContainerName != c.Name"}},
	"PodFailurePolicyOnExitCodesRequirement.operator":      {uses: []string{"workload:r.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn"}},
	"PodFailurePolicyOnExitCodesRequirement.values":        {uses: []string{"workload:slices.Contains(r.Values"}},
	"PodFailurePolicyOnPodConditionsPattern.type":          {uses: []string{"workload:pc.Type == corev1.DisruptionTarget"}},
	"PodFailurePolicyOnPodConditionsPattern.status":        {uses: []string{"workload:pc.Status == corev1.ConditionTrue"}},

	"Service.apiVersion": {uses: []string{loaderAPI}},
	"Service.kind":       {uses: []string{loaderKind}},
	"Service.metadata":   {uses: []string{loaderMeta}},
	"Service.spec":       {uses: []string{"netplan:svc.Spec.Ports"}},

	"ServiceSpec.type":                          {uses: []string{"netplan:svc.Spec.Type == corev1.ServiceTypeNodePort"}},
	"ServiceSpec.clusterIP":                     {uses: []string{"netplan:want := svc.Spec.ClusterIP"}},
	"ServiceSpec.sessionAffinity":               {uses: []string{"netplan:svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP"}},
	"ServiceSpec.sessionAffinityConfig":         {uses: []string{"netplan:svc.Spec.SessionAffinityConfig"}},
	"ServiceSpec.externalTrafficPolicy":         {uses: []string{"netplan:svc.Spec.ExternalTrafficPolicy"}},
	"SessionAffinityConfig.clientIP":            {uses: []string{"netplan:c.ClientIP != nil"}},
	"ClientIPConfig.timeoutSeconds":             {uses: []string{"netplan:*c.ClientIP.TimeoutSeconds"}},
	"ServiceSpec.ports":                         {uses: []string{"netplan:range svc.Spec.Ports"}},
	"ServiceSpec.selector":                      {uses: []string{"netplan:matches(svc.Spec.Selector, p.Labels)"}},
	"ServiceSpec.loadBalancerSourceRanges":      {uses: []string{"netplan:range svc.Spec.LoadBalancerSourceRanges"}},
	"ServiceSpec.allocateLoadBalancerNodePorts": {uses: []string{"netplan:*svc.Spec.AllocateLoadBalancerNodePorts"}},

	"ServicePort.name":       {uses: []string{"netplan:Port{Name: sp.Name"}},
	"ServicePort.protocol":   {uses: []string{"netplan:Protocol: sp.Protocol", "netplan:nodePortKey(p.NodePort, p.Protocol)"}},
	"ServicePort.port":       {uses: []string{"netplan:Port: sp.Port"}},
	"ServicePort.targetPort": {uses: []string{"netplan:tp := sp.TargetPort"}},
	"ServicePort.nodePort":   {uses: []string{"netplan:a.holdPort(k, &alloc, pk, p.NodePort, p.Protocol)"}},

	"Secret.apiVersion": {uses: []string{loaderAPI}},
	"Secret.kind":       {uses: []string{loaderKind}},
	"Secret.metadata":   {uses: []string{loaderMeta}},
	"Secret.data":       {uses: []string{"reconciler:s.Data[k]"}},
	"Secret.stringData": {uses: []string{"specs:range o.StringData"}},         // folded into data, as the API server does
	"Secret.type":       {uses: []string{"specs:secretRequiredKeys[s.Type]"}}, // checks the keys the type needs, as the API server does

	"ConfigMap.apiVersion": {uses: []string{loaderAPI}},
	"ConfigMap.kind":       {uses: []string{loaderKind}},
	"ConfigMap.metadata":   {uses: []string{loaderMeta}},
	"ConfigMap.data":       {uses: []string{"reconciler:cm.Data[k]"}},
	"ConfigMap.binaryData": {uses: []string{"reconciler:cm.BinaryData[key]"}},

	"PersistentVolumeClaim.apiVersion": {uses: []string{loaderAPI}},
	"PersistentVolumeClaim.kind":       {uses: []string{loaderKind}},
	"PersistentVolumeClaim.metadata":   {uses: []string{loaderMeta}},
	"PersistentVolumeClaim.spec":       {uses: []string{"reconciler:claimOf(o)"}},

	"PersistentVolumeClaimSpec.accessModes":      {uses: []string{"reconciler:readOnlyClaim(pvc)"}}, // ReadOnlyMany mounts read-only; ReadWriteOncePod is refused
	"PersistentVolumeClaimSpec.resources":        {informational: "the storage request is required and recorded with the claim (reconciler.Claim.StorageBytes), but a local directory has no size: nothing enforces it, as with local-path provisioners"},
	"PersistentVolumeClaimSpec.storageClassName": {informational: "kelpie has one kind of storage, a directory on the host that holds the claim; any class name gets that (Kubernetes would leave a claim of an unknown class Pending)"},
	"VolumeResourceRequirements.limits":          {informational: "validated (storage only); a local directory has no size to limit"},
	"VolumeResourceRequirements.requests":        {informational: "validated (storage only, more than 0) and recorded with the claim; a local directory has no size to enforce"},

	"Namespace.apiVersion": {uses: []string{loaderAPI}},
	"Namespace.kind":       {uses: []string{loaderKind}},
	"Namespace.metadata":   {informational: "namespaces exist as soon as an object names them; a Namespace object is accepted so repositories written for Kubernetes load, and its labels and annotations have no effect"},

	"Network.apiVersion": {uses: []string{loaderAPI}},
	"Network.kind":       {uses: []string{loaderKind}},
	"Network.metadata":   {uses: []string{loaderMeta}},
	"Network.spec":       {uses: []string{"reconciler:Type: o.Spec.Type"}},

	"NetworkSpec.type":     {uses: []string{"reconciler:Type: o.Spec.Type"}},
	"NetworkSpec.subnet":   {uses: []string{"reconciler:Subnet: o.Spec.Subnet"}},
	"NetworkSpec.gateway":  {uses: []string{"reconciler:Gateway: o.Spec.Gateway"}},
	"NetworkSpec.master":   {uses: []string{"reconciler:Master: o.Spec.Master"}},
	"NetworkSpec.isolated": {uses: []string{"reconciler:Isolated: o.Spec.Isolated"}},
}

// TestEveryAcceptedFieldDoesSomething walks the accepted-field list
// (supportedFields) and holds kelpie to "nothing accepted that is not
// run": every field validate accepts is read where it takes effect, or is
// documented as informational, or is a known gap. A field added to
// supportedFields fails here until fieldUses classifies it; an entry whose
// field left supportedFields fails as stale; a use whose text no longer
// occurs in the non-test Go files of its package fails, so a refactoring
// that drops the read of a field is caught. Gaps are listed in the test's
// log: issue 12 is done when there are none.
func TestEveryAcceptedFieldDoesSomething(t *testing.T) {
	accepted := map[string]bool{}
	typeNames := map[string]string{}
	for typ, fields := range supportedFields {
		if prev, dup := typeNames[typ.Name()]; dup {
			t.Fatalf("%s and %s share the name %s: fieldUses keys would collide", prev, typ, typ.Name())
		}
		typeNames[typ.Name()] = typ.String()
		for _, f := range fields {
			accepted[typ.Name()+"."+f] = true
		}
	}
	for _, key := range sortedKeys(accepted) {
		if _, ok := fieldUses[key]; !ok {
			t.Errorf("%s is accepted but fieldUses does not say what it does: add where it is read, or why it is informational", key)
		}
	}
	sources := map[string]string{}
	var gaps []string
	for _, key := range sortedKeys(fieldUses) {
		u := fieldUses[key]
		if !accepted[key] {
			t.Errorf("fieldUses lists %s, which supportedFields does not accept; remove it", key)
		}
		set := 0
		for _, s := range []string{strings.Join(u.uses, ""), u.informational, u.gap} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			t.Errorf("%s: want exactly one of uses, informational and gap", key)
		}
		if u.gap != "" {
			gaps = append(gaps, key+": "+u.gap)
		}
		for _, use := range u.uses {
			dir, text, ok := strings.Cut(use, ":")
			if !ok || dir == "" || text == "" {
				t.Errorf("%s: use %q: want DIR:TEXT", key, use)
				continue
			}
			src, ok := sources[dir]
			if !ok {
				var err error
				if src, err = packageSource(filepath.Join("..", filepath.FromSlash(dir))); err != nil {
					t.Fatal(err)
				}
				sources[dir] = src
			}
			if !strings.Contains(src, text) {
				t.Errorf("%s: %q occurs in no non-test Go file of %s/: find where the field is read now", key, text, dir)
			}
		}
	}
	for _, g := range gaps {
		t.Logf("gap: %s", g)
	}
}

// packageSource returns the non-test Go files of directory dir (not its
// subdirectories), concatenated.
func packageSource(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "", os.ErrNotExist
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		b.Write(data)
		b.WriteByte('\n')
	}
	return b.String(), nil
}
