package k8splugin_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/strongroom-kms/strongroom/internal/k8splugin"
)

// encryptionConfiguration is what the doc's sample must hold.
type encryptionConfiguration struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Resources  []struct {
		Resources []string `yaml:"resources"`
		Providers []struct {
			KMS *struct {
				APIVersion string `yaml:"apiVersion"`
				Name       string `yaml:"name"`
				Endpoint   string `yaml:"endpoint"`
				Timeout    string `yaml:"timeout"`
			} `yaml:"kms"`
			Identity *struct{} `yaml:"identity"`
		} `yaml:"providers"`
	} `yaml:"resources"`
}

// TestDocEncryptionConfiguration: docs/kubernetes.md's sample
// EncryptionConfiguration parses, uses KMS v2 at the plugin's default
// socket, and falls back to identity; the doc states the plugin's formats
// and defaults as the code has them.
func TestDocEncryptionConfiguration(t *testing.T) {
	data, err := os.ReadFile("../../docs/kubernetes.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	var sample string
	for _, block := range strings.Split(doc, "```yaml\n")[1:] {
		if b, _, ok := strings.Cut(block, "```"); ok && strings.Contains(b, "kind: EncryptionConfiguration") {
			sample = b
		}
	}
	if sample == "" {
		t.Fatal("docs/kubernetes.md has no yaml block with kind: EncryptionConfiguration")
	}
	var c encryptionConfiguration
	dec := yaml.NewDecoder(strings.NewReader(sample))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("the sample does not parse: %v", err)
	}
	if c.APIVersion != "apiserver.config.k8s.io/v1" || c.Kind != "EncryptionConfiguration" || len(c.Resources) != 1 {
		t.Fatalf("sample = %+v", c)
	}
	r := c.Resources[0]
	if len(r.Resources) == 0 || r.Resources[0] != "secrets" || len(r.Providers) != 2 {
		t.Fatalf("sample resources = %+v", r)
	}
	kms, last := r.Providers[0].KMS, r.Providers[1]
	if kms == nil || kms.APIVersion != "v2" || kms.Name == "" || r.Providers[0].Identity != nil {
		t.Fatalf("first provider = %+v, want kms with apiVersion v2 and a name", r.Providers[0])
	}
	if want := "unix://" + k8splugin.DefaultSocket; kms.Endpoint != want {
		t.Errorf("endpoint %q, want %q (the plugin's default --socket)", kms.Endpoint, want)
	}
	if d, err := time.ParseDuration(kms.Timeout); err != nil || d <= 0 {
		t.Errorf("timeout %q: %v", kms.Timeout, err)
	}
	if last.Identity == nil || last.KMS != nil {
		t.Errorf("last provider = %+v, want identity: {}", last)
	}

	for _, s := range []string{
		k8splugin.AnnotationFormat + `: "` + k8splugin.FormatVersion + `"`,
		`{"purpose": "` + k8splugin.Context()["purpose"] + `"}`,
		"strongroom:<tenant id>:<key type>:<version>",
		"`" + k8splugin.DefaultSocket + "`",
		"(default 1h)",
		"(default 1m;",
		"at most 32",
		"kubectl get secrets --all-namespaces -o json | kubectl replace -f -",
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("docs/kubernetes.md does not say %q", s)
		}
	}
	if k8splugin.DefaultMaxDEKs != 32 || k8splugin.MaxUnhealthyRetry != 10*time.Second ||
		k8splugin.DefaultDEKMaxAge != time.Hour || k8splugin.DefaultRefresh != time.Minute {
		t.Error("docs/kubernetes.md states 32 entries, 10s while unhealthy, 1h and 1m: update it")
	}
	if got := k8splugin.KeyID("t", "data", 3); got != "strongroom:t:data:3" {
		t.Errorf("KeyID = %q: docs/kubernetes.md states strongroom:<tenant id>:<key type>:<version>", got)
	}
}
