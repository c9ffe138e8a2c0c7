// Package reconcilertest holds test doubles for code that drives a
// reconciler.Runtime. It is imported by tests only, never by production code.
package reconcilertest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
)

// Fake is an in-memory Runtime for tests of the planner, the executor and
// the packages that drive them (cli, agent). It runs nothing: it keeps the
// state the Runtime methods describe and reports it from Observe. As
// STYLE.md says, a fake is fine for planner tests and never the only test
// of a capability; package runtime/host tests the real one against containerd.
//
// Fake checks the promises Execute makes to a Runtime, so tests catch a
// plan in the wrong order: CreatePod fails when a network or claim the pod
// uses does not exist or a pod of that name has another spec hash;
// RemoveNetwork fails while a pod uses the network; RestartContainer fails
// for a container the pod does not have.
//
// Fake is safe for concurrent use.
type Fake struct {
	// Hook, when set, is called at the start of every method call, outside
	// the fake's lock and while the call counts as in flight, with the
	// method's name and its subject ("default/web-0", "sensors",
	// "default/web-0/httpd"). Tests use it to hold calls or cancel a
	// context. Set it before the fake is used.
	Hook func(method, subject string)

	mu          sync.Mutex
	pods        map[string]*reconciler.ActualPod
	networks    map[string]string // name → hash
	claims      map[string]bool   // "namespace/name"
	created     map[string]reconciler.Pod
	calls       []Call
	counts      map[string]int
	faults      map[string]map[int]error
	inFlight    int
	maxInFlight int
	nextIP      int
}

// Call is one recorded method call of a Fake.
type Call struct {
	Method  string
	Subject string
}

// fakeMethods are the method names FailOn accepts.
var fakeMethods = []string{"Observe", "EnsureNetwork", "RemoveNetwork", "EnsureClaim", "CreatePod", "RemovePod", "RestartContainer"}

// NewFake returns a Fake whose state is initially actual.
func NewFake(actual reconciler.Actual) *Fake {
	f := &Fake{
		pods:     map[string]*reconciler.ActualPod{},
		networks: map[string]string{},
		claims:   map[string]bool{},
		counts:   map[string]int{},
		faults:   map[string]map[int]error{},
	}
	for _, p := range actual.Pods {
		f.pods[reconciler.JoinName(p.Namespace, p.Name)] = cloneActualPod(p)
	}
	for _, n := range actual.Networks {
		f.networks[n.Name] = n.Hash
	}
	for _, c := range actual.Claims {
		f.claims[reconciler.JoinName(c.Namespace, c.Name)] = true
	}
	return f
}

// FailOn makes the nth call (counting from 1 over the fake's life) of
// method (a Runtime method name, e.g. "CreatePod") fail with err, changing
// nothing. It panics on an unknown method name.
func (f *Fake) FailOn(method string, nth int, err error) {
	if !slices.Contains(fakeMethods, method) {
		panic("reconciler.Fake.FailOn: unknown method " + method)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults[method] == nil {
		f.faults[method] = map[int]error{}
	}
	f.faults[method][nth] = err
}

// Calls returns the calls made so far, in the order they started.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// MaxInFlight returns the most calls that were ever running at once.
func (f *Fake) MaxInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInFlight
}

// SetContainer sets the state of a container of an existing pod, adding
// it when the pod lacks it: drift done by hand, a crash, an exit.
func (f *Fake) SetContainer(namespace, pod string, c reconciler.ActualContainer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pods[reconciler.JoinName(namespace, pod)]
	if !ok {
		return fmt.Errorf("fake: no pod %s", reconciler.JoinName(namespace, pod))
	}
	for i := range p.Containers {
		if p.Containers[i].Name == c.Name {
			p.Containers[i] = c
			return nil
		}
	}
	p.Containers = append(p.Containers, c)
	return nil
}

// BreakSandbox marks a pod's sandbox as gone, as when its network
// namespace was deleted by hand.
func (f *Fake) BreakSandbox(namespace, pod string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pods[reconciler.JoinName(namespace, pod)]
	if !ok {
		return fmt.Errorf("fake: no pod %s", reconciler.JoinName(namespace, pod))
	}
	p.SandboxReady = false
	return nil
}

// begin records a call and decides whether it fails. The returned func
// ends the call.
func (f *Fake) begin(ctx context.Context, method, subject string) (func(), error) {
	f.mu.Lock()
	f.calls = append(f.calls, Call{Method: method, Subject: subject})
	f.counts[method]++
	fault := f.faults[method][f.counts[method]]
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	end := func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}
	if f.Hook != nil {
		f.Hook(method, subject)
	}
	if err := ctx.Err(); err != nil {
		return end, err
	}
	return end, fault
}

// Observe implements Runtime.
func (f *Fake) Observe(ctx context.Context) (reconciler.Actual, error) {
	end, err := f.begin(ctx, "Observe", "")
	defer end()
	if err != nil {
		return reconciler.Actual{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var a reconciler.Actual
	for _, p := range f.pods {
		a.Pods = append(a.Pods, *cloneActualPod(*p))
	}
	sort.Slice(a.Pods, func(i, j int) bool {
		return reconciler.NamespacedLess(a.Pods[i].Namespace, a.Pods[i].Name, a.Pods[j].Namespace, a.Pods[j].Name)
	})
	for name, hash := range f.networks {
		a.Networks = append(a.Networks, reconciler.ActualNetwork{Name: name, Hash: hash})
	}
	sort.Slice(a.Networks, func(i, j int) bool { return a.Networks[i].Name < a.Networks[j].Name })
	for key := range f.claims {
		ns, name, _ := reconciler.SplitName(key)
		a.Claims = append(a.Claims, reconciler.ActualClaim{Namespace: ns, Name: name})
	}
	sort.Slice(a.Claims, func(i, j int) bool {
		return reconciler.NamespacedLess(a.Claims[i].Namespace, a.Claims[i].Name, a.Claims[j].Namespace, a.Claims[j].Name)
	})
	return a, nil
}

// EnsureNetwork implements Runtime.
func (f *Fake) EnsureNetwork(ctx context.Context, n reconciler.Network) error {
	end, err := f.begin(ctx, "EnsureNetwork", n.Name)
	defer end()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks[n.Name] = n.Hash
	return nil
}

// RemoveNetwork implements Runtime.
func (f *Fake) RemoveNetwork(ctx context.Context, name string) error {
	end, err := f.begin(ctx, "RemoveNetwork", name)
	defer end()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, p := range f.pods {
		if slices.Contains(p.Networks, name) {
			return fmt.Errorf("fake: remove network %s: pod %s uses it", name, key)
		}
	}
	delete(f.networks, name)
	return nil
}

// EnsureClaim implements Runtime.
func (f *Fake) EnsureClaim(ctx context.Context, c reconciler.Claim) error {
	end, err := f.begin(ctx, "EnsureClaim", reconciler.JoinName(c.Namespace, c.Name))
	defer end()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims[reconciler.JoinName(c.Namespace, c.Name)] = true
	return nil
}

// CreatePod implements Runtime.
func (f *Fake) CreatePod(ctx context.Context, p reconciler.Pod) error {
	key := reconciler.JoinName(p.Namespace, p.Name)
	end, err := f.begin(ctx, "CreatePod", key)
	defer end()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range p.Networks {
		if _, ok := f.networks[n]; !ok {
			return fmt.Errorf("fake: create pod %s: network %s does not exist", key, n)
		}
	}
	for _, v := range p.Volumes {
		if c, ok := v.Source.(reconciler.Claim); ok && !f.claims[reconciler.JoinName(c.Namespace, c.Name)] {
			return fmt.Errorf("fake: create pod %s: claim %s does not exist", key, reconciler.JoinName(c.Namespace, c.Name))
		}
	}
	if f.created == nil {
		f.created = map[string]reconciler.Pod{}
	}
	f.created[key] = p
	a, ok := f.pods[key]
	if !ok {
		f.nextIP++
		a = &reconciler.ActualPod{
			Namespace: p.Namespace, Name: p.Name, Owner: p.Owner, Hash: p.Hash,
			IP:       fmt.Sprintf("10.244.%d.%d", f.nextIP/250, f.nextIP%250+2),
			Networks: slices.Clone(p.Networks), GracePeriod: p.TerminationGracePeriod,
		}
		f.pods[key] = a
	}
	if a.Hash != p.Hash {
		return fmt.Errorf("fake: create pod %s: it exists with spec hash %s, not %s", key, a.Hash, p.Hash)
	}
	a.SandboxReady = true
	index := map[string]int{}
	for i, c := range a.Containers {
		index[c.Name] = i
	}
	ensure := func(name string, st reconciler.ContainerState) *reconciler.ActualContainer {
		i, ok := index[name]
		if !ok {
			a.Containers = append(a.Containers, reconciler.ActualContainer{Name: name, State: reconciler.Missing})
			i = len(a.Containers) - 1
			index[name] = i
		}
		c := &a.Containers[i]
		if c.State == reconciler.Missing {
			c.State = st
			c.ExitCode = 0
		}
		return c
	}
	for _, c := range p.InitContainers {
		ic := ensure(c.Name, reconciler.Exited)
		if ic.State == reconciler.Exited && ic.ExitCode != 0 { // a failed init container runs again
			ic.ExitCode = 0
			ic.Restarts++
			ic.Streak++
		}
	}
	for _, c := range p.Containers {
		ensure(c.Name, reconciler.Running)
	}
	return nil
}

// Created returns the pod the last CreatePod call for namespace/name was
// given (the containers it created were made from it, or from an earlier
// call's when they existed already).
func (f *Fake) Created(namespace, name string) (reconciler.Pod, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.created[reconciler.JoinName(namespace, name)]
	return p, ok
}

// RemovePod implements Runtime.
func (f *Fake) RemovePod(ctx context.Context, namespace, name string, grace time.Duration) error {
	end, err := f.begin(ctx, "RemovePod", reconciler.JoinName(namespace, name))
	defer end()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pods, reconciler.JoinName(namespace, name))
	return nil
}

// RestartContainer implements Runtime.
func (f *Fake) RestartContainer(ctx context.Context, p reconciler.Pod, container string) error {
	key := reconciler.JoinName(p.Namespace, p.Name)
	end, err := f.begin(ctx, "RestartContainer", key+"/"+container)
	defer end()
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.pods[key]
	if !ok {
		return fmt.Errorf("fake: restart %s/%s: no such pod", key, container)
	}
	for i := range a.Containers {
		c := &a.Containers[i]
		if c.Name != container {
			continue
		}
		switch c.State {
		case reconciler.Exited:
			c.State = reconciler.Running
			c.Restarts++
			c.Streak++
		case reconciler.Created:
			c.State = reconciler.Running
		case reconciler.Missing:
			return fmt.Errorf("fake: restart %s/%s: the container is missing", key, container)
		}
		return nil
	}
	return fmt.Errorf("fake: restart %s/%s: no such container", key, container)
}

// cloneActualPod deep-copies an actual pod.
func cloneActualPod(p reconciler.ActualPod) *reconciler.ActualPod {
	p.Networks = slices.Clone(p.Networks)
	p.Containers = slices.Clone(p.Containers)
	return &p
}

var _ reconciler.Runtime = (*Fake)(nil)
