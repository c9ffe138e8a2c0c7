package cli

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/kelpie-dev/kelpie/runtime/host"
	"github.com/kelpie-dev/kelpie/specs"
)

// execCommand is `kelpie exec [NAMESPACE/]POD [-c NAME] [-i] [-t] -- CMD...`.
func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in a running container of a pod, on this host or through an agent",
		ArgsUsage: "[NAMESPACE/]POD -- COMMAND [ARG...]",
		Description: "Runs COMMAND in the container, as its own process runs (user, environment,\n" +
			"working directory), through containerd, and exits with the command's status.\n" +
			"-i passes standard input; -t gives the command a terminal (standard input must be\n" +
			"one): raw mode, window size followed. Without -t, SIGINT, SIGTERM, SIGHUP and\n" +
			"SIGQUIT are passed to the command. With --agent, the agent runs it (its API token\n" +
			"is needed), forwarding to the host of its cluster that runs the pod; without,\n" +
			"this host's containerd runs it.",
		Flags: concatFlags([]cli.Flag{
			&cli.StringFlag{Name: "container", Aliases: []string{"c"}, Usage: "the container's name (needed when the pod has several)", EnvVars: envVars("container")},
			&cli.BoolFlag{Name: "stdin", Aliases: []string{"i"}, Usage: "pass standard input to the command", EnvVars: envVars("stdin")},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "run the command on a terminal", EnvVars: envVars("tty")},
		}, runtimeFlags(), agentFlags()),
		Action:                 runExec,
		UseShortOptionHandling: true, // -it
	}
}

// runExec runs a command in a container.
func runExec(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) < 2 {
		return usageErrorf(c, "exec takes a pod and a command: kelpie exec [NAMESPACE/]POD -- COMMAND [ARG...]")
	}
	namespace, pod := specs.DefaultNamespace, args[0]
	if ns, name, ok := strings.Cut(pod, "/"); ok {
		namespace, pod = ns, name
	}
	eio := host.ExecIO{Stdout: c.App.Writer, Stderr: c.App.ErrWriter, TTY: c.Bool("tty")}
	if c.Bool("stdin") {
		eio.Stdin = c.App.Reader
	}
	if eio.TTY {
		in, ok := c.App.Reader.(*os.File)
		if !ok || !term.IsTerminal(int(in.Fd())) {
			return usageErrorf(c, "flag -t needs a terminal on standard input (run without -t)")
		}
		fd := int(in.Fd())
		old, err := term.MakeRaw(fd)
		if err != nil {
			return err
		}
		defer term.Restore(fd, old)
		if w, h, err := term.GetSize(fd); err == nil {
			eio.Size = host.TermSize{Width: uint32(w), Height: uint32(h)}
		}
		resize := make(chan host.TermSize, 1)
		eio.Resize = resize
		stop := followSize(c.Context, fd, resize)
		defer stop()
	} else {
		sigs := make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
		defer signal.Stop(sigs)
		pass := make(chan syscall.Signal, 4)
		eio.Signals = pass
		go func() {
			for s := range sigs {
				select {
				case pass <- s.(syscall.Signal):
				default:
				}
			}
		}()
	}
	var code int
	var err error
	if c.IsSet("agent") {
		code, err = remoteExec(c, namespace, pod, c.String("container"), args[1:], eio)
	} else {
		code, err = localExec(c, namespace, pod, args[1:], eio)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return ExitCode(code)
	}
	return nil
}

// localExec runs the command through this host's containerd.
func localExec(c *cli.Context, namespace, pod string, cmd []string, eio host.ExecIO) (int, error) {
	rt, err := openRuntime(c)
	if err != nil {
		return -1, err
	}
	defer rt.Close()
	return rt.Exec(c.Context, namespace, pod, c.String("container"), cmd, eio)
}

// followSize sends the terminal's size on every SIGWINCH until stopped.
func followSize(ctx context.Context, fd int, out chan<- host.TermSize) (stop func()) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				if w, h, err := term.GetSize(fd); err == nil {
					select {
					case out <- host.TermSize{Width: uint32(w), Height: uint32(h)}:
					default:
					}
				}
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		cancel()
	}
}
