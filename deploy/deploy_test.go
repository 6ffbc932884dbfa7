// Package deploy_test checks the packaging examples against the code they
// package: the Dockerfile's build line builds, its image runs as non-root on
// a base with no shell; the systemd unit passes systemd-analyze (verify, and
// an exposure threshold); the Kubernetes manifest's configuration is one the
// server accepts, and every file it names is mounted where it says.
package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/hsm/pkcs11"
)

// serverArgs is how every example starts the server.
var serverArgs = []string{"server", "--config", "/etc/strongroom/config.yaml"}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

func dockerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// jsonArgs parses an exec-form ENTRYPOINT or CMD.
func jsonArgs(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := yaml.Unmarshal([]byte(in.args), &v); err != nil || !strings.HasPrefix(in.args, "[") {
		t.Fatalf("%s %s: not in exec form (a JSON array): %v", in.cmd, in.args, err)
	}
	return v
}

func TestDockerfile(t *testing.T) {
	ins := dockerfile(t)
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%s before the first FROM", in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build stage and the image", len(stages))
	}
	build, final := stages[0], stages[1]

	// The build stage's Go is the go.mod's.
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goLine == nil {
		t.Fatal("go.mod has no go line")
	}
	if want := "golang:" + string(goLine[1]) + "-"; !strings.HasPrefix(build[0].args, want) {
		t.Errorf("build stage FROM %s, want %s… (go.mod's Go)", build[0].args, want)
	}

	// The image: distroless (no shell, no package manager), non-root.
	base := strings.Fields(final[0].args)[0]
	if !strings.HasPrefix(base, "gcr.io/distroless/") || !strings.HasSuffix(base, ":nonroot") {
		t.Errorf("image base %s: want a distroless :nonroot base", base)
	}
	var user string
	var entry, cmd []string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = jsonArgs(t, in)
		case "CMD":
			cmd = jsonArgs(t, in)
		case "RUN":
			t.Errorf("RUN in the image stage (%s): the base has no shell", in.args)
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: the image must run as a non-root user", user)
	}
	if !slices.Equal(entry, []string{"/usr/local/bin/strongroom"}) || !slices.Equal(cmd, serverArgs) {
		t.Errorf("ENTRYPOINT %q CMD %q, want the server started as %q", entry, cmd, serverArgs)
	}

	// The build line builds: run it with -n (plan the build, run nothing),
	// from the repository root, as the Dockerfile's WORKDIR is.
	var line string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			line = in.args
		}
	}
	if line == "" {
		t.Fatal("no RUN go build in the build stage")
	}
	env, argv := splitCommand(t, line)
	i := slices.Index(argv, "build")
	if i < 1 || argv[0] != "go" {
		t.Fatalf("RUN %s: want a go build command", line)
	}
	argv = slices.Insert(argv, i+1, "-n")
	if j := slices.Index(argv, "-o"); j > 0 {
		argv[j+1] = filepath.Join(t.TempDir(), "strongroom")
	}
	c := exec.Command("go", argv[1:]...)
	c.Dir = ".."
	c.Env = append(os.Environ(), env...)
	if out, err := c.CombinedOutput(); err != nil {
		t.Errorf("the Dockerfile's build line fails: %v\n%s", err, lastLines(out, 10))
	}

	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(ignore)), ".git") {
		t.Error(".dockerignore does not leave out .git")
	}
}

// splitCommand splits a RUN line into its leading VAR=value assignments
// and its words, expanding ${VERSION} to a test value and dropping quotes
// (the line has no nested quoting).
func splitCommand(t *testing.T, line string) (env, argv []string) {
	t.Helper()
	line = strings.ReplaceAll(line, "${VERSION}", "test")
	for _, m := range regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(line, -1) {
		m = strings.Trim(m, `"`)
		if len(argv) == 0 && regexp.MustCompile(`^[A-Z_]+=`).MatchString(m) {
			env = append(env, m)
			continue
		}
		argv = append(argv, m)
	}
	return env, argv
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// systemdAnalyze finds systemd-analyze: scripts/test.sh installs it, so a
// CI run without it fails instead of skipping.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is not installed (scripts/test.sh installs systemd)")
		}
		t.Skip("systemd-analyze is not installed")
	}
	return p
}

func TestSystemdUnit(t *testing.T) {
	analyze := systemdAnalyze(t)
	unit, err := os.ReadFile("systemd/strongroom.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for line := range strings.Lines(string(unit)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && !strings.HasPrefix(k, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	exe := strings.Fields(strings.Join(keys["ExecStart"], ""))
	if len(exe) == 0 || exe[0] != "/usr/local/bin/strongroom" || !slices.Equal(exe[1:], serverArgs) {
		t.Errorf("ExecStart=%q, want /usr/local/bin/strongroom %s", exe, strings.Join(serverArgs, " "))
	}
	if u := strings.Join(keys["User"], ""); u == "" || u == "root" || u == "0" {
		t.Errorf("User=%q: the server must not run as root", u)
	}
	for k, want := range map[string]string{"LimitCORE": "0", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "UMask": "0077"} {
		if got := strings.Join(keys[k], ""); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}

	// systemd-analyze checks the unit with the binary it starts present:
	// this test's own executable stands in for it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "strongroom.service")
	data := bytes.Replace(unit, []byte("ExecStart=/usr/local/bin/strongroom"), []byte("ExecStart="+self), 1)
	if err := os.WriteFile(copyPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c := exec.Command(analyze, "verify", copyPath)
	c.Stderr = &stderr
	if err := c.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
	// Exposure at most 2.0 on systemd's 0 (locked down) to 10 (unsafe)
	// scale.
	out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", copyPath).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0: %v\n%s", err, lastLines(out, 3))
	}
}

// manifest decodes the Kubernetes manifest's documents by kind.
func manifest(t *testing.T) map[string][]map[string]any {
	t.Helper()
	data, err := os.ReadFile("kubernetes/region.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string][]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatal(err)
		}
		kind, _ := doc["kind"].(string)
		docs[kind] = append(docs[kind], doc)
	}
	return docs
}

// at walks a decoded YAML document along keys (map keys or list indexes).
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %q", path, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", path, k)
			}
			v = l[k]
		}
	}
	return v
}

func list(v any) []map[string]any {
	var out []map[string]any
	l, _ := v.([]any)
	for _, x := range l {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func TestKubernetesManifest(t *testing.T) {
	docs := manifest(t)
	if len(docs["StatefulSet"]) != 1 || len(docs["ConfigMap"]) != 1 {
		t.Fatalf("want one StatefulSet and one ConfigMap, have %d and %d", len(docs["StatefulSet"]), len(docs["ConfigMap"]))
	}
	sts := docs["StatefulSet"][0]
	if n := at(t, sts, "spec", "replicas"); n != 2 {
		t.Errorf("replicas %v, want a two-node region", n)
	}
	pod := at(t, sts, "spec", "template", "spec")
	psc := at(t, pod, "securityContext")
	if at(t, psc, "runAsNonRoot") != true || at(t, psc, "runAsUser") == 0 || at(t, psc, "runAsUser") == nil {
		t.Errorf("pod securityContext %v: want runAsNonRoot and a non-zero runAsUser", psc)
	}
	if at(t, pod, "automountServiceAccountToken") != false {
		t.Error("the pod mounts a service account token it does not need")
	}
	var server map[string]any
	for _, c := range append(list(at(t, pod, "initContainers")), list(at(t, pod, "containers"))...) {
		sc := at(t, c, "securityContext")
		if at(t, sc, "allowPrivilegeEscalation") != false || at(t, sc, "readOnlyRootFilesystem") != true ||
			!slices.Equal(at(t, sc, "capabilities", "drop").([]any), []any{"ALL"}) {
			t.Errorf("container %v: securityContext %v, want no privilege escalation, a read-only root and no capabilities", c["name"], sc)
		}
		if c["name"] == "strongroom" {
			server = c
		}
	}
	if server == nil {
		t.Fatal("no strongroom container")
	}
	var args []string
	for _, a := range at(t, server, "args").([]any) {
		args = append(args, a.(string))
	}
	if !slices.Equal(args, serverArgs) {
		t.Errorf("args %q, want %q", args, serverArgs)
	}
	for probe, path := range map[string]string{"startupProbe": "/v1/health", "livenessProbe": "/v1/health", "readinessProbe": "/v1/ready"} {
		if at(t, server, probe, "httpGet", "path") != path || at(t, server, probe, "httpGet", "scheme") != "HTTPS" {
			t.Errorf("%s: want HTTPS GET %s", probe, path)
		}
	}

	// The configuration is one the server accepts.
	cfgText := at(t, docs["ConfigMap"][0], "data", "config.yaml").(string)
	cfg, err := config.Parse([]byte(cfgText))
	if err != nil {
		t.Fatalf("the ConfigMap's config.yaml: %v", err)
	}
	if _, port, _ := strings.Cut(cfg.Listen, ":"); port != "8443" || at(t, server, "ports", 0, "containerPort") != 8443 {
		t.Errorf("listen %s and containerPort %v disagree", cfg.Listen, at(t, server, "ports", 0, "containerPort"))
	}

	// Its DSN comes from a Secret, by the variable it names.
	dsnFromSecret := false
	for _, e := range list(at(t, server, "env")) {
		if e["name"] == cfg.Store.DSNEnv && at(t, e, "valueFrom", "secretKeyRef", "name") != nil {
			dsnFromSecret = true
		}
	}
	if cfg.Store.DSNEnv == "" || !dsnFromSecret {
		t.Errorf("store.dsn_env %q is not set from a Secret", cfg.Store.DSNEnv)
	}

	// Every file it names is mounted; the witness's directory writable, on
	// the node's own volume.
	mounts := list(at(t, server, "volumeMounts"))
	mountOf := func(path string) map[string]any {
		var best map[string]any
		for _, m := range mounts {
			mp := m["mountPath"].(string)
			if (path == mp || strings.HasPrefix(path, mp+"/")) && (best == nil || len(mp) > len(best["mountPath"].(string))) {
				best = m
			}
		}
		return best
	}
	u, err := pkcs11.ParseURI(cfg.HSM.URI)
	if err != nil {
		t.Fatalf("hsm.uri: %v", err)
	}
	files := append([]string{cfg.TLS.Cert, cfg.TLS.Key, cfg.Primary, cfg.Certificate, u.ModulePath, u.PINFile}, cfg.Officers.Keys...)
	for _, f := range files {
		if m := mountOf(f); m == nil || m["readOnly"] != true {
			t.Errorf("%s: not on a read-only mount (%v)", f, m)
		}
	}
	w := mountOf(cfg.Audit.WitnessFile)
	if w == nil || w["readOnly"] == true || filepath.Dir(cfg.Audit.WitnessFile) != w["mountPath"] {
		t.Errorf("audit.witness_file %s: want its directory a writable mount, have %v", cfg.Audit.WitnessFile, w)
	}
	claims := list(at(t, sts, "spec", "volumeClaimTemplates"))
	if len(claims) != 1 || at(t, claims[0], "metadata", "name") != w["name"] {
		t.Errorf("the witness volume %v is not the node's own claim", w["name"])
	}
	// Secret volumes are private to the server (mode 0400, made 0440
	// root:fsGroup by the kubelet: the private-file rule).
	for _, v := range list(at(t, pod, "volumes")) {
		if s, ok := v["secret"]; ok && at(t, s, "defaultMode") != 0o400 {
			t.Errorf("secret volume %v: defaultMode %v, want 0400", v["name"], at(t, s, "defaultMode"))
		}
	}

	// The Services select the pods.
	labels := at(t, sts, "spec", "template", "metadata", "labels").(map[string]any)
	for _, svc := range docs["Service"] {
		for k, v := range at(t, svc, "spec", "selector").(map[string]any) {
			if labels[k] != v {
				t.Errorf("Service %v selects %s=%v, which the pods do not have", at(t, svc, "metadata", "name"), k, v)
			}
		}
	}
}
