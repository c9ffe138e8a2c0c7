package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kelpie-dev/kelpie/reconciler"
	"github.com/kelpie-dev/kelpie/runtime/errdefs"
)

// KillContainer stops the running task of a pod's container, as the
// kubelet does when a liveness or startup probe fails: SIGTERM, then
// SIGKILL to all its processes once grace has passed (at once when grace
// is not positive). It returns once the task has exited. The container
// and its stopped task stay, so that Observe reports it Exited with its
// exit code (143 after SIGTERM, 137 after SIGKILL) and the planner's
// restart policy decides what follows. A container that does not exist or
// does not run succeeds; one that is not kelpie's is refused.
func (c *Containerd) KillContainer(ctx context.Context, namespace, pod, container string, grace time.Duration) error {
	key := reconciler.JoinName(namespace, pod)
	ctx = c.client.WithNamespace(ctx)
	cont, err := c.loadOwned(ctx, containerIDOf(namespace, pod, container), key, container)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("kill container %s/%s: %w", key, container, err)
	}
	t, st, err := taskOf(ctx, cont)
	if err != nil {
		return fmt.Errorf("kill container %s/%s: %w", key, container, err)
	}
	if !st.running() {
		return nil
	}
	if err := killTask(ctx, t, grace); err != nil {
		return fmt.Errorf("kill container %s/%s: %w", key, container, err)
	}
	c.log.Info("container killed", "pod", key, "container", container, "id", cont.ID(), "grace", grace)
	return nil
}
