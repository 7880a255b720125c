package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"ldkbackup/internal/config"
)

func healthcheckCmd(env *cliEnv) *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "exit 0 when the server on this machine answers /readyz with 200",
		Long: `Ask a running server whether it is ready (GET /readyz: the process answers, the
database answers and has every migration this release needs) and exit 0 if it
is, 1 otherwise. It reads PORT (and HOST) as serve does, so a container's
health check needs nothing but the binary: the image has no shell or curl.`,
		Example: `  server healthcheck
  server healthcheck --url http://10.0.0.5:3003/readyz --timeout 2s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				cfg, err := config.Load(config.Default(), env.getenv)
				if err != nil {
					return err
				}
				url = readyURL(cfg)
			}
			if err := checkReady(cmd.Context(), url, timeout); err != nil {
				return err
			}
			fmt.Fprintf(env.stdout, "ready: %s\n", url)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "URL to ask (default http://127.0.0.1:$PORT/readyz, or $HOST when it names one address)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// readyURL is where the server configured by cfg answers /readyz from this
// machine: a wildcard listen address is reached on loopback.
func readyURL(cfg config.Config) string {
	host := cfg.Host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(cfg.Port)) + "/readyz"
}

func checkReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("--url %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s answered %s", url, resp.Status)
	}
	return nil
}
