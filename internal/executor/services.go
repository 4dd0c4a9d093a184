// Service containers and the job container's options: `services:` sidecars
// on the job's network under their key as host name, health checks waited
// for before the first step, ports published on loopback only, `options`
// limited to the docker flags that cannot reach outside the job, volumes
// only inside the job's own area. All of it is removed with the job.

package executor

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// serviceHealthPoll is how often a starting service's health is checked.
const serviceHealthPoll = 500 * time.Millisecond

// allowedOptions are the docker run flags a workflow's `options:` may use,
// with whether they take a value. Everything else (--privileged,
// --network, --volume, --cap-add, --device, resource limits, ...) is
// refused: the job's isolation and limits are the executor's.
var allowedOptions = map[string]bool{
	"--health-cmd": true, "--health-interval": true, "--health-timeout": true,
	"--health-retries": true, "--health-start-period": true, "--health-start-interval": true,
	"--no-healthcheck": false,
	"--entrypoint":     true, // services only: the job container needs its own
	"--user":           true, "-u": true, "--workdir": true, "-w": true,
	"--hostname": true, "-h": true, "--tmpfs": true, "--shm-size": true,
	"--label": true, "-l": true, "--stop-signal": true, "--stop-timeout": true,
}

// parseContainerOptions turns an `options:` string into docker run flags,
// refusing the flags not in allowedOptions.
func parseContainerOptions(opts string, service bool) ([]string, error) {
	words, err := splitCommandLine(opts)
	if err != nil {
		return nil, fmt.Errorf("options: %v", err)
	}
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		name, value, hasValue := strings.Cut(w, "=")
		takes, ok := allowedOptions[name]
		if !ok || name == "--entrypoint" && !service {
			return nil, fmt.Errorf("options: %s is not allowed here (allowed: %s)", name, allowedOptionList(service))
		}
		switch {
		case !takes && hasValue:
			return nil, fmt.Errorf("options: %s takes no value", name)
		case !takes:
			out = append(out, name)
		case hasValue:
			out = append(out, name+"="+value)
		case i+1 < len(words):
			out = append(out, name+"="+words[i+1])
			i++
		default:
			return nil, fmt.Errorf("options: %s needs a value", name)
		}
	}
	return out, nil
}

func allowedOptionList(service bool) string {
	var names []string
	for _, n := range slices.Sorted(maps.Keys(allowedOptions)) {
		if strings.HasPrefix(n, "--") && (service || n != "--entrypoint") {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// portArgs publishes ports on the host's loopback only: "80" and "80/tcp"
// get a free port, "8080:80" the port asked for. A host address other than
// 127.0.0.1 is refused, as a job must not open ports to the network.
func portArgs(ports []string) ([]string, error) {
	var out []string
	for _, p := range ports {
		p = strings.TrimSpace(p)
		parts := strings.Split(p, ":")
		switch len(parts) {
		case 1:
			out = append(out, "-p", "127.0.0.1::"+p)
		case 2:
			out = append(out, "-p", "127.0.0.1:"+p)
		case 3:
			if parts[0] != "127.0.0.1" {
				return nil, fmt.Errorf("ports: %q: only 127.0.0.1 may be a host address", p)
			}
			out = append(out, "-p", p)
		default:
			return nil, fmt.Errorf("ports: %q is not PORT, HOST_PORT:PORT or 127.0.0.1:HOST_PORT:PORT", p)
		}
	}
	return out, nil
}

// volumeArgs mounts a container's volumes: "/path" is an anonymous volume
// of the container's own (removed with it); "SRC:/path[:ro]" mounts the
// job's workspace again at /path, where SRC names the workspace itself
// ("." or /workspace). The workspace is a Docker volume of the job's own,
// so a subdirectory cannot be mounted on its own, and any other source
// (a host path, another volume) would reach outside the job: refused.
func (j *execJob) volumeArgs(volumes []string) ([]string, error) {
	var out []string
	for _, v := range volumes {
		parts := strings.Split(strings.TrimSpace(v), ":")
		if len(parts) == 1 {
			if !path.IsAbs(parts[0]) {
				return nil, fmt.Errorf("volumes: %q: a volume without a source must be an absolute container path", v)
			}
			out = append(out, "-v", path.Clean(parts[0]))
			continue
		}
		if len(parts) > 3 || len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw" || !path.IsAbs(parts[1]) {
			return nil, fmt.Errorf("volumes: %q is not SOURCE:/container/path[:ro]", v)
		}
		if !isWorkspaceSource(parts[0]) {
			return nil, fmt.Errorf("volumes: %q: a volume's source must be the workspace itself (. or %s); host paths and other volumes are outside the job", v, protocol.Workspace)
		}
		spec := j.name + ":" + path.Clean(parts[1])
		if len(parts) == 3 {
			spec += ":" + parts[2]
		}
		out = append(out, "-v", spec)
	}
	return out, nil
}

// isWorkspaceSource reports whether a volume source names the workspace.
func isWorkspaceSource(src string) bool {
	if path.IsAbs(src) {
		return path.Clean(src) == protocol.Workspace
	}
	return path.Clean(src) == "."
}

// serviceName is the container name of a service.
func (j *execJob) serviceName(id string) string {
	clean := []byte(id)
	for i, c := range clean {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			clean[i] = '-'
		}
	}
	return j.name + "-svc-" + string(clean)
}

// startServices starts the job's services on its network and waits until
// the ones with a health check are healthy. It returns the Set up job lines.
func (j *execJob) startServices() ([]string, error) {
	if len(j.job.Services) == 0 {
		return nil, nil
	}
	var lines []string
	services := map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(j.job.Services)) {
		svc := j.job.Services[id]
		if svc == nil {
			continue
		}
		name := j.serviceName(id)
		args, envFile, err := j.serviceArgs(id, *svc)
		if err != nil {
			return lines, &setupError{"start service " + id, err}
		}
		j.services = append(j.services, name)
		_, _, err = j.ex.docker.Output(j.ctx, args...)
		if envFile != "" {
			os.Remove(envFile)
		}
		if err != nil {
			return lines, &setupError{"start service " + id + " from image " + svc.Image, err}
		}
		lines = append(lines, fmt.Sprintf("Service %s: %s (%s), host name %s", id, svc.Image, name, id))
		ports, err := j.servicePorts(name)
		if err != nil {
			return lines, &setupError{"read the ports of service " + id, err}
		}
		services[id] = map[string]any{"id": name, "network": j.network, "ports": ports}
	}
	for _, id := range slices.Sorted(maps.Keys(j.job.Services)) {
		status, err := j.waitHealthy(j.serviceName(id))
		if err != nil {
			return lines, &setupError{"wait for service " + id, err}
		}
		if status != "" {
			lines = append(lines, fmt.Sprintf("Service %s is %s", id, status))
		}
	}
	if m, ok := j.st.contexts["job"].(map[string]any); ok {
		m["services"] = services
	}
	return lines, nil
}

// serviceArgs is the docker run command line of a service. Its env goes
// through a file (0600, removed once docker has read it), never argv.
func (j *execJob) serviceArgs(id string, svc workflow.ContainerSpec) (args []string, envFile string, err error) {
	if svc.Image == "" {
		return nil, "", errors.New("the service has no image")
	}
	if err := j.checkImage("the service's image", svc.Image); err != nil {
		return nil, "", err
	}
	opts, err := parseContainerOptions(svc.Options, true)
	if err != nil {
		return nil, "", err
	}
	ports, err := portArgs(svc.Ports)
	if err != nil {
		return nil, "", err
	}
	vols, err := j.volumeArgs(svc.Volumes)
	if err != nil {
		return nil, "", err
	}
	cfg := j.ex.cfg
	args = append([]string{"run", "-d", "--name", j.serviceName(id)}, j.labelArgs()...)
	args = append(args,
		"--network", j.network, "--network-alias", id,
		"--memory", cfg.Memory, "--cpus", cfg.CPUs,
		"--pids-limit", strconv.Itoa(cfg.PidsLimit),
		"--pull="+cfg.Pull,
		// A service runs what the workflow names, as the job does: the same
		// privileges (docker.go's jobCapabilities).
		"--security-opt", "no-new-privileges", "--cap-drop", "ALL",
	)
	for _, c := range jobCapabilities {
		args = append(args, "--cap-add", c)
	}
	if len(svc.Env) > 0 {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(svc.Env)) {
			v := svc.Env[k]
			if !validEnvName(k) || strings.ContainsAny(v, "\r\n") {
				return nil, "", fmt.Errorf("env %s: a service's env names are letters, digits and _, and its values one line", k)
			}
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
		f, err := os.CreateTemp(cfg.WorkDir, j.name+"-env-*")
		if err != nil {
			return nil, "", err
		}
		envFile = f.Name()
		_, werr := f.WriteString(b.String())
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(envFile)
			return nil, "", werr
		}
		args = append(args, "--env-file", envFile)
	}
	args = append(args, ports...)
	args = append(args, vols...)
	args = append(args, opts...)
	args = append(args, "--", svc.Image)
	return args, envFile, nil
}

// servicePorts reads a service's published ports: container port → host port.
func (j *execJob) servicePorts(name string) (map[string]any, error) {
	out, _, err := j.ex.docker.Output(j.ctx, "port", name)
	if err != nil {
		return nil, err
	}
	ports := map[string]any{}
	for _, line := range strings.Split(out, "\n") {
		// 80/tcp -> 127.0.0.1:32768
		c, h, ok := strings.Cut(line, " -> ")
		if !ok {
			continue
		}
		c, _, _ = strings.Cut(strings.TrimSpace(c), "/")
		if i := strings.LastIndex(h, ":"); i >= 0 {
			ports[c] = strings.TrimSpace(h[i+1:])
		}
	}
	return ports, nil
}

// waitHealthy waits while the container's health check says "starting";
// "" means it has none. Unhealthy is an error, as on GitHub.
func (j *execJob) waitHealthy(name string) (string, error) {
	for {
		out, _, err := j.ex.docker.Output(j.ctx, "inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", name)
		if err != nil {
			return "", err
		}
		switch out {
		case "", "healthy":
			return out, nil
		case "unhealthy":
			return out, fmt.Errorf("the service's health check says %s", out)
		}
		select {
		case <-j.ctx.Done():
			return "", j.ctx.Err()
		case <-time.After(serviceHealthPoll):
		}
	}
}

// containerExtraArgs are the job container's own settings from its
// `container:` key and the job's network.
func (j *execJob) containerExtraArgs() ([]string, error) {
	var args []string
	c := j.job.Container
	if c == nil {
		return args, nil
	}
	opts, err := parseContainerOptions(c.Options, false)
	if err != nil {
		return nil, err
	}
	ports, err := portArgs(c.Ports)
	if err != nil {
		return nil, err
	}
	vols, err := j.volumeArgs(c.Volumes)
	if err != nil {
		return nil, err
	}
	args = append(args, ports...)
	args = append(args, vols...)
	return append(args, opts...), nil
}
