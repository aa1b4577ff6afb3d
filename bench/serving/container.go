package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/template"
)

// The stack SageMaker's XGBoost container runs to serve a model (its serving entry point calls
// sagemaker_containers' server.start): nginx in front, proxying /ping and /invocations over a
// unix socket to gunicorn with gevent workers, one per core, 1000 connections per worker, and
// gunicorn logging at info; nginx with one worker per core, access log on, keep-alive 3 s.
// This reproduces it with Debian's nginx, gunicorn, python3-gevent and python3-flask, serving
// the same reference app as the gunicorn-only baseline.
const nginxBin = "/usr/sbin/nginx"

// nginxConf follows the container's nginx.conf.template, with its paths moved into the
// bench's temporary directory so that it needs nothing of /etc or /var.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`{{if .Root}}user root;
{{end}}worker_processes auto;
daemon off;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log;
worker_rlimit_nofile 4096;

events {
  worker_connections 2048;
}

http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log {{.Dir}}/nginx-access.log combined;
  client_body_temp_path {{.Dir}}/nginx-tmp/body;
  proxy_temp_path {{.Dir}}/nginx-tmp/proxy;
  fastcgi_temp_path {{.Dir}}/nginx-tmp/fastcgi;
  uwsgi_temp_path {{.Dir}}/nginx-tmp/uwsgi;
  scgi_temp_path {{.Dir}}/nginx-tmp/scgi;

  upstream gunicorn {
    server unix:{{.Socket}};
  }

  server {
    listen {{.Addr}} deferred;
    client_max_body_size 0;
    keepalive_timeout 3;

    location ~ ^/(ping|invocations|execution-parameters) {
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header Host $http_host;
      proxy_redirect off;
      proxy_read_timeout 60s;
      proxy_pass http://gunicorn;
    }

    location / {
      return 404 "{}";
    }
  }
}
`))

// startContainer runs the reference app as SageMaker's XGBoost container serves a model.
func startContainer(ctx context.Context, o options, dir, modelPath string) (*server, error) {
	appDir, err := writeReferenceApp(dir)
	if err != nil {
		return nil, err
	}
	stackDir := filepath.Join(dir, "container")
	if err := os.MkdirAll(filepath.Join(stackDir, "nginx-tmp"), 0o755); err != nil {
		return nil, err
	}
	socket := filepath.Join(stackDir, "gunicorn.sock")
	os.Remove(socket) // left by an earlier round
	logPath := filepath.Join(stackDir, "gunicorn.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	workers := runtime.NumCPU()
	cmd := exec.Command(gunicornBin, "--timeout", "60", "-k", "gevent", "-b", "unix:"+socket,
		"--worker-connections", strconv.Itoa(1000*workers), "-w", strconv.Itoa(workers),
		"--log-level", "info", "--chdir", appDir, "app:app")
	cmd.Env = append(os.Environ(), "MODEL_PATH="+modelPath, "OMP_NUM_THREADS=1", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	gunicorn, err := startChild(cmd)
	if err != nil {
		return nil, fmt.Errorf("start gunicorn: %w", err)
	}
	nginx, addr, err := startNginx(stackDir, socket)
	if err != nil {
		gunicorn.stop()
		return nil, err
	}
	srv := &server{name: "container", url: "http://" + addr + "/invocations", pingURL: "http://" + addr + "/ping",
		pid: nginx.cmd.Process.Pid, children: true, more: []int{cmd.Process.Pid},
		stop: func() error {
			errN, errG := nginx.stop(), gunicorn.stop()
			if errN != nil {
				return fmt.Errorf("nginx: %w", errN)
			}
			return errG
		}}
	if err := waitReady(ctx, srv.pingURL, gunicorn, logPath); err != nil {
		srv.stop()
		return nil, fmt.Errorf("nginx + gunicorn: %w", err)
	}
	return srv, nil
}

// startNginx writes the configuration and starts nginx on a free loopback port. The port is
// picked by listening and closing, so another process could take it in between: nginx then
// fails to start and says so.
func startNginx(dir, socket string) (*child, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	var conf strings.Builder
	if err := nginxConf.Execute(&conf, map[string]any{"Dir": dir, "Socket": socket, "Addr": addr, "Root": os.Geteuid() == 0}); err != nil {
		return nil, "", err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		return nil, "", err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "nginx-error.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, "", err
	}
	defer logFile.Close()
	cmd := exec.Command(nginxBin, "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", confPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	c, err := startChild(cmd)
	if err != nil {
		return nil, "", fmt.Errorf("start nginx: %w", err)
	}
	return c, addr, nil
}

// writeReferenceApp writes reference/app.py into dir and returns its directory.
func writeReferenceApp(dir string) (string, error) {
	appDir := filepath.Join(dir, "reference")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		return "", err
	}
	return appDir, os.WriteFile(filepath.Join(appDir, "app.py"), referenceApp, 0o644)
}

// debianPackages are what the Python stacks and the load generator need, by the file that
// shows each is installed.
var debianPackages = []struct{ path, pkg string }{
	{"/usr/bin/wrk", "wrk"},
	{gunicornBin, "gunicorn"},
	{nginxBin, "nginx"},
	{"/usr/lib/python3/dist-packages/flask", "python3-flask"},
	{"/usr/lib/python3/dist-packages/gevent", "python3-gevent"},
	{"/usr/lib/python3/dist-packages/xgboost", "python3-xgboost"},
}

// installPackages installs with apt-get the Debian packages the baselines need and lack.
func installPackages(ctx context.Context) error {
	var missing []string
	for _, p := range debianPackages {
		if _, err := os.Stat(p.path); err != nil {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	logf("installing %s with apt-get", strings.Join(missing, " "))
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s (as root, or install them yourself; -install=false skips this): %w\n%s",
			strings.Join(missing, " "), err, lastLines(out, 10))
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func nginxVersion() string {
	out, _ := exec.Command(nginxBin, "-v").CombinedOutput()
	_, v, ok := strings.Cut(strings.TrimSpace(string(out)), "version: ")
	if !ok {
		return "nginx"
	}
	return v
}
