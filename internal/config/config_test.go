package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExample(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "example.yaml"))
	if err != nil {
		t.Fatalf("Load(example) error = %v", err)
	}
	if c.Region != "eu1" || c.Store.DSNFile != "/etc/strongroom/dsn" || time.Duration(c.Cache.TTL) != 15*time.Minute ||
		c.Audit.WitnessFile != "/var/lib/strongroom/audit-witness" {
		t.Errorf("Load(example) = %+v", c)
	}
	for _, tc := range []struct {
		env, typ string
		want     time.Duration
	}{
		{"production", "data", 24 * time.Hour},
		{"developer", "data", 24 * time.Hour},
		{"sandbox", "data", 4 * time.Hour},
		{"sandbox", "search_index", 72 * time.Hour},
		{"production", "event_bus", 7 * 24 * time.Hour},
		{"production", "analytics", 24 * time.Hour},
	} {
		if got := c.RotationInterval(tc.env, tc.typ); got != tc.want {
			t.Errorf("RotationInterval(%s, %s) = %v, want %v", tc.env, tc.typ, got, tc.want)
		}
	}
}

const minimal = `version: 1
region: eu1
listen: 127.0.0.1:8443
tls: {cert: c, key: k}
hsm: {uri: "soft:/x"}
primary: p
certificate: c
officers: {keys: [a.pub, b.pub], min_quorum: 2}
store: {dsn_env: DSN}
`

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rotation.MaxKeys != DefaultMaxKeys || c.Limits.MaxBatch != DefaultMaxBatch || c.Log.Format != "json" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// TestWitnessFileDefault: without audit.witness_file, Load puts the witness
// next to the configuration file; a configured path is kept as given.
func TestWitnessFileDefault(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ yaml, want string }{
		"default":    {minimal, filepath.Join(dir, DefaultWitnessFile)},
		"configured": {minimal + "audit: {witness_file: /var/lib/strongroom/eu1.witness}\n", "/var/lib/strongroom/eu1.witness"},
	} {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err != nil {
			t.Fatalf("%s: Load() error = %v", name, err)
		}
		if c.Audit.WitnessFile != tc.want {
			t.Errorf("%s: Load() audit.witness_file = %q, want %q", name, c.Audit.WitnessFile, tc.want)
		}
	}
}

func TestRefusals(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"empty":           {"", "empty"},
		"unknown key":     {minimal + "colour: blue\n", "field colour not found"},
		"typo nested":     {strings.Replace(minimal, "dsn_env", "dsn_envv", 1), "dsn_envv"},
		"inline dsn":      {strings.Replace(minimal, "{dsn_env: DSN}", `{dsn: "postgres://u:pw@h/db"}`, 1), "field dsn not found"},
		"version":         {strings.Replace(minimal, "version: 1", "version: 2", 1), "version 2 is not supported"},
		"no version":      {strings.Replace(minimal, "version: 1\n", "", 1), "version 0 is not supported"},
		"missing region":  {strings.Replace(minimal, "region: eu1\n", "", 1), "region is required"},
		"both dsn":        {minimal + "store: {dsn_env: A, dsn_file: B}\n", "mapping key \"store\" already defined"},
		"no dsn":          {strings.Replace(minimal, "store: {dsn_env: DSN}\n", "", 1), "exactly one of dsn_file or dsn_env"},
		"pin-value":       {strings.Replace(minimal, `"soft:/x"`, `"pkcs11:token=a?pin-value=1234"`, 1), "pin-value is not allowed"},
		"bad duration":    {minimal + "cache: {ttl: soon}\n", `"soon" is not a duration`},
		"unknown type":    {minimal + "rotation: {production: {blob: 1h}}\n", `unknown key type "blob"`},
		"bad level":       {minimal + "log: {level: loud}\n", `log.level "loud"`},
		"two documents":   {minimal + "---\nversion: 1\n", "more than one YAML document"},
		"max keys":        {minimal + "rotation: {max_keys: 5000}\n", "max_keys must be 1 to 1000"},
		"quorum too big":  {withOfficers("{keys: [a.pub], min_quorum: 2}"), "min_quorum must be 1 to 1"},
		"quorum no keys":  {withOfficers("{min_quorum: 2}"), "min_quorum needs officers.keys"},
		"no roster":       {withOfficers("{}"), "set officers.allow_any: true"},
		"no officers":     {strings.Replace(minimal, "officers: {keys: [a.pub, b.pub], min_quorum: 2}\n", "", 1), "officers.keys lists their public key files"},
		"any and keys":    {withOfficers("{keys: [a.pub], min_quorum: 1, allow_any: true}"), "allow_any contradicts officers.keys"},
		"any officers":    {withOfficers("{allow_any: true}"), ""},
		"passphrase file": {strings.Replace(minimal, `"soft:/x"`, `"pkcs11:token=a"`, 1) + "", ""},
	}
	for name, c := range cases {
		_, err := Parse([]byte(c.yaml))
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: Parse() error = %v", name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Parse() error = %v, want it to contain %q", name, err, c.want)
		}
	}
}

// withOfficers is minimal with officers: set to the YAML flow mapping m.
func withOfficers(m string) string {
	return strings.Replace(minimal, "officers: {keys: [a.pub, b.pub], min_quorum: 2}", "officers: "+m, 1)
}

func TestDSNByReference(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DSN", "")
	if _, err := c.DSN(); err == nil || !strings.Contains(err.Error(), "unset or empty") {
		t.Errorf("DSN(unset) error = %v", err)
	}
	t.Setenv("DSN", "sqlite:/var/lib/kms.db")
	if v, err := c.DSN(); err != nil || v != "sqlite:/var/lib/kms.db" {
		t.Errorf("DSN() = %q, %v", v, err)
	}
	f := filepath.Join(t.TempDir(), "dsn")
	os.WriteFile(f, []byte("postgres://kms@db/kms\n"), 0o600)
	c.Store = Store{DSNFile: f}
	if v, err := c.DSN(); err != nil || v != "postgres://kms@db/kms" {
		t.Errorf("DSN(file) = %q, %v", v, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	ex, _ := os.ReadFile(filepath.Join("testdata", "example.yaml"))
	f.Add(ex)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err == nil && (c.Version != Version || c.Region == "" || c.Rotation.MaxKeys < 1) {
			t.Fatalf("Parse accepted an invalid configuration: %+v", c)
		}
	})
}
