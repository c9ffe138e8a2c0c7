package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Job is a Job to run: its key, its identity and its defaulted spec.
type Job struct {
	Namespace string
	Name      string
	// Identity says which run of the Job this is (JobIdentity): a record
	// with another identity belongs to an earlier template, and the Job
	// runs anew. Pods carry it, abbreviated, in their names.
	Identity string
	Spec     batchv1.JobSpec
}

// JobOf returns the Job of a defaulted manifest Job, its identity computed
// by JobIdentity.
func JobOf(j *batchv1.Job) (Job, error) {
	id, err := JobIdentity(j.Namespace, j.Name, &j.Spec)
	if err != nil {
		return Job{}, err
	}
	return Job{Namespace: j.Namespace, Name: j.Name, Identity: id, Spec: j.Spec}, nil
}

// identityInput is what a Job's identity covers. JSON encodes struct
// fields in declaration order and map keys sorted, so it is canonical.
type identityInput struct {
	Namespace      string                  `json:"namespace"`
	Name           string                  `json:"name"`
	Template       *corev1.PodTemplateSpec `json:"template"`
	Completions    *int32                  `json:"completions"`
	CompletionMode string                  `json:"completionMode"`
}

// JobIdentity returns the identity of the Job namespace/name with the
// defaulted spec: "sha256:" and the hash of its namespace, name, pod
// template (labels, annotations and spec), completions and completion
// mode, the fields Kubernetes does not let change on a Job. The other
// fields (parallelism, backoffLimit, activeDeadlineSeconds,
// ttlSecondsAfterFinished, podFailurePolicy) apply to the run under way
// and never make the Job run again. The content of the ConfigMaps and
// Secrets the template uses is not covered: a changed ConfigMap does not
// rerun a Job. To rerun an unchanged Job, change its template, e.g. an
// annotation.
func JobIdentity(namespace, name string, spec *batchv1.JobSpec) (string, error) {
	mode := string(batchv1.NonIndexedCompletion)
	if spec.CompletionMode != nil && *spec.CompletionMode != "" {
		mode = string(*spec.CompletionMode)
	}
	in := identityInput{Namespace: namespace, Name: name, Template: &spec.Template, Completions: spec.Completions, CompletionMode: mode}
	data, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("identity of Job %s/%s: %w", namespace, name, err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// indexed reports whether the Job's completion mode is Indexed.
func (j *Job) indexed() bool {
	return j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion
}

// shortID returns the identity abbreviated for pod names: 5 hex digits.
func shortID(identity string) string {
	_, h, ok := strings.Cut(identity, ":")
	if !ok {
		h = identity
	}
	if len(h) > 5 {
		h = h[:5]
	}
	return h
}

// JobPodName names the pod with sequence number seq of a run of the Job
// name with identity: NAME-ID-SEQ, or NAME-ID-INDEX-SEQ for an Indexed
// Job (index ≥ 0), where ID is the identity's first 5 hex digits. Every
// pod of a run has its own sequence number, counted from 0, so a name is
// never reused within a run, and a new run (new identity) never meets the
// names of an earlier one.
func JobPodName(name, identity string, seq, index int) string {
	parts := []string{name, shortID(identity)}
	if index >= 0 {
		parts = append(parts, strconv.Itoa(index))
	}
	return strings.Join(append(parts, strconv.Itoa(seq)), "-")
}

// CompletionIndexEnv is the environment variable that tells a pod of an
// Indexed Job its completion index, as in Kubernetes.
const CompletionIndexEnv = "JOB_COMPLETION_INDEX"

// JobCondition is how a Job ended; "" while it runs.
type JobCondition string

// Job conditions.
const (
	JobComplete JobCondition = "Complete"
	JobFailed   JobCondition = "Failed"
)

// verb says how the Job ended: "completed" or "failed".
func (c JobCondition) verb() string {
	if c == JobComplete {
		return "completed"
	}
	return "failed"
}

// Reasons a Job failed, as Kubernetes names them.
const (
	ReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	ReasonDeadlineExceeded     = "DeadlineExceeded"
	ReasonPodFailurePolicy     = "PodFailurePolicy"
	// ReasonCompletionsReached is the reason of a Complete Job.
	ReasonCompletionsReached = "CompletionsReached"
)

// JobRecord is the recorded outcome of a Job's run, kept durably in the
// cluster state (JSON) and passed back to SyncJob each time: what makes a
// finished Job never run again and each pod's outcome count once.
type JobRecord struct {
	// Identity is the Job identity the record belongs to.
	Identity string `json:"identity"`
	// StartTime is when the run began; activeDeadlineSeconds counts from it.
	StartTime time.Time `json:"startTime,omitzero"`
	// Created counts the pods created so far: the next pod's sequence number.
	Created int `json:"created,omitempty"`
	// Active lists the pods created whose outcome is not counted yet.
	Active []JobPodRecord `json:"active,omitempty"`
	// Succeeded and Failed count the pods that succeeded and failed
	// (failures a podFailurePolicy rule ignores are not counted). For an
	// Indexed Job, Succeeded is the number of completed indexes.
	Succeeded int `json:"succeeded,omitempty"`
	Failed    int `json:"failed,omitempty"`
	// CompletedIndexes are the indexes of an Indexed Job that succeeded.
	CompletedIndexes Indexes `json:"completedIndexes,omitzero"`
	// FailuresSinceSuccess and LastFailure drive the back-off before pods
	// that replace failed ones are created.
	FailuresSinceSuccess int       `json:"failuresSinceSuccess,omitempty"`
	LastFailure          time.Time `json:"lastFailure,omitzero"`
	// Condition, Reason and Message say how the run ended, and
	// FinishTime when; ttlSecondsAfterFinished counts from it.
	Condition  JobCondition `json:"condition,omitempty"`
	Reason     string       `json:"reason,omitempty"`
	Message    string       `json:"message,omitempty"`
	FinishTime time.Time    `json:"finishTime,omitzero"`
}

// JobPodRecord is a pod of a run whose outcome is not counted yet.
type JobPodRecord struct {
	Name string `json:"name"`
	Seq  int    `json:"seq"`
	// Index is the completion index; -1 for a NonIndexed Job.
	Index int `json:"index"`
}

// Finished reports whether the run ended.
func (r *JobRecord) Finished() bool { return r.Condition != "" }

// PodPhase is what the caller observed of a Job's pod.
type PodPhase string

// Pod phases. Lost is kelpie's: the pod's host is gone (or the pod
// vanished without an outcome); it counts as a failure that matches the
// DisruptionTarget pod condition of a podFailurePolicy.
const (
	PodPending   PodPhase = "Pending"
	PodRunning   PodPhase = "Running"
	PodSucceeded PodPhase = "Succeeded"
	PodFailed    PodPhase = "Failed"
	PodLost      PodPhase = "Lost"
)

// finished reports whether the phase is final.
func (p PodPhase) finished() bool {
	return p == PodSucceeded || p == PodFailed || p == PodLost
}

// JobPod is an existing pod of a Job, as observed.
type JobPod struct {
	Name string
	// Identity, Seq and Index are what the pod was created with (from
	// its labels); Index is -1 for a NonIndexed Job.
	Identity string
	Seq      int
	Index    int
	Phase    PodPhase
	// Ready is the pod's Ready condition.
	Ready bool
	// Restarts sums the restarts of the pod's containers (restartPolicy
	// OnFailure restarts them in place; they count against backoffLimit).
	Restarts int
	// Exits are the exit codes of the pod's terminated containers, init
	// containers first; a podFailurePolicy matches them.
	Exits []ContainerExit
	// FinishedAt is when a finished pod ended; zero means unknown (now).
	FinishedAt time.Time
}

// ContainerExit is the exit code of one terminated container of a pod.
type ContainerExit struct {
	Name     string
	ExitCode int
}

// JobPodToCreate is a pod SyncJob asks for.
type JobPodToCreate struct {
	Name string
	Seq  int
	// Index is the completion index, -1 for a NonIndexed Job.
	Index int
	// Env is added to every container: JOB_COMPLETION_INDEX for an
	// Indexed Job, nothing otherwise.
	Env []corev1.EnvVar
	// Hostname is the pod's hostname: NAME-INDEX for an Indexed Job (as in
	// Kubernetes), the pod name otherwise.
	Hostname string
}

// PodDeletion is a pod to delete and why.
type PodDeletion struct {
	Name   string
	Reason string
}

// JobDecision is what SyncJob decided.
type JobDecision struct {
	// Record is the new record; the caller stores it (fenced) before or
	// together with creating the pods in Create.
	Record JobRecord
	// Create lists the pods to create, by sequence number.
	Create []JobPodToCreate
	// Delete lists the pods to delete, by name.
	Delete []PodDeletion
	// Active and Ready count the pods that run or wait to run, and those
	// of them that are Ready (for ps and status).
	Active int
	Ready  int
	// ExpireAt is when a finished Job's pods and logs may be removed
	// (ttlSecondsAfterFinished); zero when never or not finished. Expired
	// is set once that time has passed, and Delete then lists every pod.
	ExpireAt time.Time
	Expired  bool
	// Wake is when SyncJob must run again although nothing was observed
	// (a back-off ends, the deadline or the TTL passes); zero for none.
	Wake time.Time
	// Events are the transitions of this sync, one log line each.
	Events []string
}
