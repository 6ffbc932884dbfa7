// Package config is the regional server's configuration file: YAML, versioned,
// decoded strictly (an unknown key is an error, not a silent typo), with every
// secret given only by reference, as a file or an environment variable.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Version is the configuration format this build reads.
const Version = 1

// Config is a regional server's configuration.
type Config struct {
	Version int    `yaml:"version"`
	Region  string `yaml:"region"`
	// Listen is the HTTPS address, e.g. 127.0.0.1:8443.
	Listen string `yaml:"listen"`
	TLS    TLS    `yaml:"tls"`
	HSM    HSM    `yaml:"hsm"`
	// Primary is primary.pub: the pinned primary public keys.
	Primary string `yaml:"primary"`
	// Certificate is this region's certificate, issued by the primary.
	Certificate string `yaml:"certificate"`
	// Officers pins the crypto officers whose plans this region accepts.
	Officers Officers `yaml:"officers"`
	Store    Store    `yaml:"store"`
	Log      Log      `yaml:"log"`
	Rotation Rotation `yaml:"rotation"`
	Cache    Cache    `yaml:"cache"`
	// CacheOnly configures cache-only keys (docs/cache-only.md).
	CacheOnly CacheOnly `yaml:"cache_only"`
	Limits    Limits    `yaml:"limits"`
	Audit     Audit     `yaml:"audit"`
}

// Audit configures the audit log (docs/audit.md).
type Audit struct {
	// CheckpointInterval is how often the node appends the data-plane
	// aggregate and signs a checkpoint of the log with its HSM's audit key
	// (when the log grew). Default 1m; 1s to 24h.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// WitnessFile is where the node keeps its witness: the last checkpoint
	// it signed and the log's state at that size, outside the database
	// (docs/audit.md, "The witness"). Keep it with the HSM configuration,
	// where someone with access to the database alone cannot write.
	// Default (filled in by Load, not Parse): DefaultWitnessFile in the
	// configuration file's directory.
	WitnessFile string `yaml:"witness_file"`
}

// Officers is the region's officer roster: the officers' public key files
// (officer new writes them) and the least quorum a plan must require. A
// bundle whose plan names anyone else, or a smaller quorum, is refused even
// though the primary signed it. The roster is required: without Keys, the
// configuration is refused unless AllowAny says, explicitly, to accept any
// officers the primary accepted.
type Officers struct {
	Keys      []string `yaml:"keys"`
	MinQuorum int      `yaml:"min_quorum"`
	AllowAny  bool     `yaml:"allow_any"`
}

// TLS names the server's certificate and key files.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// HSM names the regional HSM. The soft backend's passphrase comes from
// PassphraseFile or the environment variable STRONGROOM_HSM_PASSPHRASE;
// PKCS#11 PINs from the URI's pin-source.
type HSM struct {
	URI            string `yaml:"uri"`
	PassphraseFile string `yaml:"passphrase_file"`
}

// Store is the database. Its DSN may hold a password, so it is given by
// reference only: a file holding it, or an environment variable naming it.
type Store struct {
	DSNFile string `yaml:"dsn_file"`
	DSNEnv  string `yaml:"dsn_env"`
}

// Log configures operational logs (the audit log is a separate sink).
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// Rotation sets the minimum interval between two new keys of a key type,
// per tenant environment. Keys absent from the file keep their defaults.
type Rotation struct {
	Production map[string]Duration `yaml:"production"`
	Developer  map[string]Duration `yaml:"developer"`
	Sandbox    map[string]Duration `yaml:"sandbox"`
	// MaxKeys is the most active plus archived keys per tenant and type.
	MaxKeys int `yaml:"max_keys"`
}

// Cache configures the encrypted in-memory DEK cache.
type Cache struct {
	MaxEntries int      `yaml:"max_entries"`
	TTL        Duration `yaml:"ttl"`
}

// CacheOnly configures cache-only keys, whose material tenants' key
// services hold.
type CacheOnly struct {
	// MaxAge is the longest a fetched key's DEK stays in memory before it
	// is fetched again (never longer than the cache's TTL either). Default
	// and most 72h.
	MaxAge Duration `yaml:"max_age"`
}

// DefaultCacheOnlyMaxAge is cache_only.max_age's default, and its most.
const DefaultCacheOnlyMaxAge = 72 * time.Hour

// Limits bound what one request may ask.
type Limits struct {
	MaxBodyBytes   int64    `yaml:"max_body_bytes"`
	MaxBatch       int      `yaml:"max_batch"`
	RequestTimeout Duration `yaml:"request_timeout"`
}

// Duration is a time.Duration written as "24h", "15m"...
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: a duration such as 24h or 15m", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 24h or 15m", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// KeyTypes are the key types of the product.
var KeyTypes = []string{"data", "deterministic", "search_index", "event_bus", "analytics"}

// Environments are the tenant environments.
var Environments = []string{"production", "developer", "sandbox"}

// DefaultRotation is the product's default minimum interval between new keys
// of a type (S8): production and developer tenants once per 24 h and sandboxes
// once per 4 h for data; search_index and event_bus once per 7 days.
func DefaultRotation(env, keyType string) time.Duration {
	switch keyType {
	case "search_index", "event_bus":
		return 7 * 24 * time.Hour
	}
	if env == "sandbox" {
		return 4 * time.Hour
	}
	return 24 * time.Hour
}

// Defaults fill in what a file leaves out.
const (
	DefaultMaxKeys      = 50
	DefaultCacheEntries = 100_000
	DefaultCacheTTL     = 15 * time.Minute
	// DefaultCheckpointInterval is audit.checkpoint_interval's default.
	DefaultCheckpointInterval = time.Minute
	// DefaultWitnessFile is audit.witness_file's default name, in the
	// configuration file's directory.
	DefaultWitnessFile    = "audit-witness"
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxBatch       = 1000
	DefaultRequestTimeout = 30 * time.Second
)

// RotationInterval is the configured minimum interval for env and keyType.
func (c *Config) RotationInterval(env, keyType string) time.Duration {
	var m map[string]Duration
	switch env {
	case "production":
		m = c.Rotation.Production
	case "developer":
		m = c.Rotation.Developer
	case "sandbox":
		m = c.Rotation.Sandbox
	}
	if d, ok := m[keyType]; ok {
		return time.Duration(d)
	}
	return DefaultRotation(env, keyType)
}

// Load reads and checks a configuration file, and fills in the defaults
// that depend on where it is (audit.witness_file).
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Audit.WitnessFile == "" {
		c.Audit.WitnessFile = filepath.Join(filepath.Dir(path), DefaultWitnessFile)
	}
	return c, nil
}

// Parse decodes a configuration strictly, fills in defaults and validates it.
func Parse(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: the file is empty")
		}
		return nil, fmt.Errorf("config: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: more than one YAML document in the file")
	}
	if c.Version != Version {
		return nil, fmt.Errorf("config: version %d is not supported; this build reads version %d (add 'version: %d')", c.Version, Version, Version)
	}
	c.defaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) defaults() {
	if c.Rotation.MaxKeys == 0 {
		c.Rotation.MaxKeys = DefaultMaxKeys
	}
	if c.Cache.MaxEntries == 0 {
		c.Cache.MaxEntries = DefaultCacheEntries
	}
	if c.Cache.TTL == 0 {
		c.Cache.TTL = Duration(DefaultCacheTTL)
	}
	if c.CacheOnly.MaxAge == 0 {
		c.CacheOnly.MaxAge = Duration(DefaultCacheOnlyMaxAge)
	}
	if c.Limits.MaxBodyBytes == 0 {
		c.Limits.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Limits.MaxBatch == 0 {
		c.Limits.MaxBatch = DefaultMaxBatch
	}
	if c.Limits.RequestTimeout == 0 {
		c.Limits.RequestTimeout = Duration(DefaultRequestTimeout)
	}
	if c.Audit.CheckpointInterval == 0 {
		c.Audit.CheckpointInterval = Duration(DefaultCheckpointInterval)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
}

func (c *Config) validate() error {
	var errs []error
	need := func(v, key string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", key))
		}
	}
	need(c.Region, "region")
	need(c.Listen, "listen")
	need(c.TLS.Cert, "tls.cert")
	need(c.TLS.Key, "tls.key")
	need(c.HSM.URI, "hsm.uri")
	need(c.Primary, "primary")
	need(c.Certificate, "certificate")
	if (c.Store.DSNFile == "") == (c.Store.DSNEnv == "") {
		errs = append(errs, errors.New("store: give exactly one of dsn_file or dsn_env (the DSN may hold a password, so never inline)"))
	}
	if strings.HasPrefix(c.HSM.URI, "pkcs11:") && strings.Contains(c.HSM.URI, "pin-value") {
		errs = append(errs, errors.New("hsm.uri: pin-value is not allowed; use pin-source=file:PATH"))
	}
	if c.HSM.PassphraseFile != "" && !strings.HasPrefix(c.HSM.URI, "soft:") {
		errs = append(errs, errors.New("hsm.passphrase_file applies only to soft: HSMs"))
	}
	for env, m := range map[string]map[string]Duration{"production": c.Rotation.Production, "developer": c.Rotation.Developer, "sandbox": c.Rotation.Sandbox} {
		for k := range m {
			if !contains(KeyTypes, k) {
				errs = append(errs, fmt.Errorf("rotation.%s: unknown key type %q (known: %s)", env, k, strings.Join(KeyTypes, ", ")))
			}
		}
	}
	switch {
	case c.Rotation.MaxKeys < 1 || c.Rotation.MaxKeys > 1000:
		errs = append(errs, errors.New("rotation.max_keys must be 1 to 1000"))
	case c.Cache.MaxEntries < 1:
		errs = append(errs, errors.New("cache.max_entries must be positive"))
	case time.Duration(c.CacheOnly.MaxAge) < time.Second || time.Duration(c.CacheOnly.MaxAge) > DefaultCacheOnlyMaxAge:
		errs = append(errs, errors.New("cache_only.max_age must be 1s to 72h"))
	case c.Limits.MaxBodyBytes < 1024 || c.Limits.MaxBodyBytes > 64<<20:
		errs = append(errs, errors.New("limits.max_body_bytes must be 1 KiB to 64 MiB"))
	case c.Limits.MaxBatch < 1 || c.Limits.MaxBatch > 10_000:
		errs = append(errs, errors.New("limits.max_batch must be 1 to 10000"))
	case time.Duration(c.Audit.CheckpointInterval) < time.Second || time.Duration(c.Audit.CheckpointInterval) > 24*time.Hour:
		errs = append(errs, errors.New("audit.checkpoint_interval must be 1s to 24h"))
	}
	switch n := len(c.Officers.Keys); {
	case n > 0 && c.Officers.AllowAny:
		errs = append(errs, errors.New("officers.allow_any contradicts officers.keys: pin the roster or allow any officers, not both"))
	case n > 0 && (c.Officers.MinQuorum < 1 || c.Officers.MinQuorum > n):
		errs = append(errs, fmt.Errorf("officers.min_quorum must be 1 to %d (the number of officers.keys)", n))
	case n == 0 && c.Officers.MinQuorum != 0:
		errs = append(errs, errors.New("officers.min_quorum needs officers.keys"))
	case n == 0 && !c.Officers.AllowAny:
		errs = append(errs, errors.New("officers: pin the crypto officers whose release plans this region accepts: "+
			"officers.keys lists their public key files (written by 'strongroom officer new') and officers.min_quorum the least quorum; "+
			"to accept any officers the primary accepted instead, set officers.allow_any: true"))
	}
	if !contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		errs = append(errs, fmt.Errorf("log.level %q: use debug, info, warn or error", c.Log.Level))
	}
	if !contains([]string{"json", "text"}, c.Log.Format) {
		errs = append(errs, fmt.Errorf("log.format %q: use json or text", c.Log.Format))
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// DSN reads the store DSN from its reference.
func (c *Config) DSN() (string, error) {
	if c.Store.DSNEnv != "" {
		v := os.Getenv(c.Store.DSNEnv)
		if v == "" {
			return "", fmt.Errorf("config: store.dsn_env names %s, which is unset or empty", c.Store.DSNEnv)
		}
		return v, nil
	}
	b, err := os.ReadFile(c.Store.DSNFile)
	if err != nil {
		return "", fmt.Errorf("config: store.dsn_file: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("config: store.dsn_file %s is empty", c.Store.DSNFile)
	}
	return v, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
