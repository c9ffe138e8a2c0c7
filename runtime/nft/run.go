package nft

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// maxErrOutput bounds how much of nft's output an error quotes: nft names
// the failing line, which is what matters.
const maxErrOutput = 2048

// nftRunner returns the function that pipes one transaction to `nft -f -`
// (in cfg.NetNS through nsenter, when set).
func nftRunner(cfg Config) (func(ctx context.Context, text string) error, error) {
	nft, err := exec.LookPath(cfg.Nft)
	if err != nil {
		return nil, fmt.Errorf("nft loader: %w (apt-get install nftables)", err)
	}
	bin, args := nft, []string{"-f", "-"}
	if cfg.NetNS != "" {
		nsenter, err := exec.LookPath("nsenter")
		if err != nil {
			return nil, fmt.Errorf("nft loader: NetNS %s: %w (apt-get install util-linux)", cfg.NetNS, err)
		}
		bin, args = nsenter, append([]string{"--net=" + cfg.NetNS, "--", nft}, args...)
	}
	return func(ctx context.Context, text string) error {
		ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdin = strings.NewReader(text)
		cmd.WaitDelay = time.Second // do not wait on pipes after a kill
		out, err := cmd.CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if len(msg) > maxErrOutput {
				msg = msg[:maxErrOutput] + " …"
			}
			if ctxErr := ctx.Err(); ctxErr != nil {
				err = fmt.Errorf("%w (%w)", err, ctxErr)
			}
			return fmt.Errorf("nft -f - (%d commands): %w: %s", strings.Count(text, "\n"), err, msg)
		}
		return nil
	}, nil
}
