package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

const (
	metricsDoc = "../../docs/metrics.md"
	dashboard  = "../../docs/grafana/strongroom.json"
)

// TestDocsMetrics: docs/metrics.md's table of metrics is Defs, row for
// row: the same names, types and labels; and its go_* and process_* rows
// name families the registry does export.
func TestDocsMetrics(t *testing.T) {
	data, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\n| metric | type | labels | meaning |\n|---|---|---|---|\n")
	if !ok {
		t.Fatalf("%s has no table of metrics", metricsDoc)
	}
	_, fams := full(t)
	defs := map[string]Def{}
	for _, d := range Defs() {
		defs[d.Name] = d
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			t.Errorf("%s: a row of %d cells: %q", metricsDoc, len(cells), line)
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`")
		typ, labels := strings.TrimSpace(cells[1]), backquoted(cells[2])
		documented[name] = true
		if prefix, ok := strings.CutSuffix(name, "*"); ok {
			found := false
			for f := range fams {
				found = found || strings.HasPrefix(f, prefix)
			}
			if !found || defs[name].Name != "" {
				t.Errorf("%s: the row %s names no family the registry exports", metricsDoc, name)
			}
			continue
		}
		d, ok := defs[name]
		switch {
		case !ok:
			t.Errorf("%s documents %s, which the package does not export", metricsDoc, name)
		case typ != d.Type:
			t.Errorf("%s: %s is a %s, documented as %q", metricsDoc, name, d.Type, typ)
		case !slices.Equal(labels, d.Labels):
			t.Errorf("%s: %s has the labels %q, documented %q", metricsDoc, name, d.Labels, labels)
		}
	}
	for name := range defs {
		if !documented[name] {
			t.Errorf("%s is exported and not in the table of %s", name, metricsDoc)
		}
	}
	for _, p := range []string{"go_*", "process_*"} {
		if !documented[p] {
			t.Errorf("%s has no row for %s", metricsDoc, p)
		}
	}
}

// backquoted returns the `words` of a table cell.
func backquoted(cell string) []string {
	var out []string
	parts := strings.Split(cell, "`")
	for i := 1; i < len(parts); i += 2 {
		out = append(out, parts[i])
	}
	return out
}

// TestDocsPrometheusSample: the scrape configuration shown is YAML that
// scrapes what the server serves, as it must be scraped.
func TestDocsPrometheusSample(t *testing.T) {
	data, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(data), "<!-- prometheus-sample -->\n```yaml\n")
	block, _, ok2 := strings.Cut(block, "```\n")
	if !ok || !ok2 {
		t.Fatalf("%s has no Prometheus sample", metricsDoc)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			Scheme        string `yaml:"scheme"`
			MetricsPath   string `yaml:"metrics_path"`
			Authorization struct {
				Type            string `yaml:"type"`
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			TLS struct {
				CAFile string `yaml:"ca_file"`
			} `yaml:"tls_config"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(block), &cfg); err != nil {
		t.Fatalf("the sample is not YAML: %v", err)
	}
	if len(cfg.ScrapeConfigs) != 1 {
		t.Fatalf("the sample has %d scrape configs, want 1", len(cfg.ScrapeConfigs))
	}
	sc := cfg.ScrapeConfigs[0]
	if sc.Scheme != "https" || sc.MetricsPath != "/v1/metrics" || sc.Authorization.Type != "Bearer" ||
		sc.Authorization.CredentialsFile == "" || sc.TLS.CAFile == "" {
		t.Errorf("the sample scrapes %+v: want https, /v1/metrics, a Bearer credentials_file and a CA", sc)
	}
}

// series are the names a query may use: each family's, and a histogram's
// _bucket (with le), _sum and _count, with their labels (and the target
// labels Prometheus adds).
func series(fams map[string]*dto.MetricFamily) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for name, f := range fams {
		labels := map[string]bool{"instance": true, "job": true}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		if f.GetType() != dto.MetricType_HISTOGRAM {
			out[name] = labels
			continue
		}
		bucket := map[string]bool{"le": true}
		for l := range labels {
			bucket[l] = true
		}
		out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = bucket, labels, labels
	}
	return out
}

var (
	promFunctions = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "count": true, "rate": true,
		"irate": true, "increase": true, "histogram_quantile": true, "vector": true, "clamp_min": true, "clamp_max": true,
		"abs": true, "deriv": true, "topk": true, "bottomk": true}
	promGrouping = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true}
	grafanaVar   = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
	matcherRE    = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)`)
	identRE      = regexp.MustCompile(`^[A-Za-z_:][A-Za-z0-9_:]*`)
	numberRE     = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?`)
)

// checkQuery reads a PromQL expression as far as a dashboard's need: the
// metrics it names (each must be a series the registry exports), the
// labels its matchers name (each must be a label of its metric) and the
// labels it groups by (each must be a label of a metric it names). It
// returns the metrics and what is wrong.
func checkQuery(expr string, known map[string]map[string]bool) (metrics []string, problems []string) {
	s := grafanaVar.ReplaceAllString(expr, "")
	var grouped []string
	last := "" // the metric just read, for the matchers after it
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return metrics, append(problems, "an unterminated string")
			}
			i += j + 2
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return metrics, append(problems, "an unterminated range")
			}
			i += j + 1
		case c == '{':
			j := selectorEnd(s[i:])
			if j < 0 {
				return metrics, append(problems, "an unterminated selector")
			}
			body := quotedRE.ReplaceAllString(s[i+1:i+j], `""`)
			for _, m := range matcherRE.FindAllStringSubmatch(body, -1) {
				if last == "" {
					problems = append(problems, "a selector without a metric name")
				} else if !known[last][m[1]] {
					problems = append(problems, fmt.Sprintf("%s has no label %s", last, m[1]))
				}
			}
			i += j + 1
		case numberRE.MatchString(s[i:]):
			i += len(numberRE.FindString(s[i:]))
		case identRE.MatchString(s[i:]):
			id := identRE.FindString(s[i:])
			i += len(id)
			rest := strings.TrimLeft(s[i:], " \t\n")
			switch {
			case promGrouping[id]:
				if !strings.HasPrefix(rest, "(") {
					problems = append(problems, id+" without a label list")
					continue
				}
				end := strings.IndexByte(rest, ')')
				for _, l := range strings.Split(rest[1:end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						grouped = append(grouped, l)
					}
				}
				i = len(s) - len(rest) + end + 1
			case promFunctions[id]:
			case strings.HasPrefix(rest, "("):
				problems = append(problems, "unknown function "+id)
			case promKeywords[id]:
			default:
				if known[id] == nil {
					problems = append(problems, "unknown metric "+id)
				}
				metrics = append(metrics, id)
				last = id
				continue
			}
			last = ""
		default:
			i++
		}
	}
	for _, l := range grouped {
		ok := false
		for _, m := range metrics {
			ok = ok || known[m][l]
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("grouped by %s, which none of %q has", l, metrics))
		}
	}
	return metrics, problems
}

var quotedRE = regexp.MustCompile(`"(\\.|[^"\\])*"`)

// selectorEnd is the index of the } that closes the selector s starts
// with, past quoted label values; -1 if none.
func selectorEnd(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '}':
			return i
		}
	}
	return -1
}

func TestCheckQuery(t *testing.T) {
	known := map[string]map[string]bool{
		"a_total":  {"route": true, "instance": true},
		"h_bucket": {"op": true, "le": true, "instance": true},
	}
	for _, c := range []struct {
		expr string
		ok   bool
	}{
		{`sum by (route) (rate(a_total{instance=~"$instance", route!="x{y}"}[$__rate_interval]))`, true},
		{`histogram_quantile(0.99, sum by (op, le) (rate(h_bucket[5m])))`, true},
		{`count(a_total == 0) or vector(0)`, true},
		{`sum(rate(b_total[5m]))`, false},              // no such metric
		{`sum by (tenant) (rate(a_total[5m]))`, false}, // no such label
		{`rate(a_total{op="x"}[5m])`, false},           // a label of another metric
		{`sum(rate(h_bucket[5m])) by (route)`, false},
		{`frobnicate(a_total)`, false},
	} {
		_, problems := checkQuery(c.expr, known)
		if (len(problems) == 0) != c.ok {
			t.Errorf("checkQuery(%s) = %q, want ok %v", c.expr, problems, c.ok)
		}
	}
}

// TestDashboard: docs/grafana/strongroom.json is a Grafana dashboard whose
// every query names only metrics and labels the registry exports, whose
// every panel queries something, and on which every metric is drawn.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboard, err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("the dashboard has no title or uid")
	}
	_, fams := full(t)
	known := series(fams)
	drawn := map[string]bool{}
	ids := map[int]bool{}
	queries := 0
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d is used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: data source %q, want the dashboard's ${datasource}", p.Title, p.Datasource.UID)
			}
			for _, tg := range p.Targets {
				queries++
				ms, problems := checkQuery(tg.Expr, known)
				for _, pr := range problems {
					t.Errorf("panel %q, query %s: %s", p.Title, tg.Expr, pr)
				}
				if len(ms) == 0 {
					t.Errorf("panel %q, query %s names no metric", p.Title, tg.Expr)
				}
				for _, m := range ms {
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if base, ok := strings.CutSuffix(m, suffix); ok && fams[base] != nil && fams[base].GetType() == dto.MetricType_HISTOGRAM {
							m = base
						}
					}
					drawn[m] = true
				}
			}
		}
	}
	walk(dash.Panels)
	if queries < 20 {
		t.Errorf("the dashboard has %d queries: is the walk broken?", queries)
	}
	labelValues := regexp.MustCompile(`^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if json.Unmarshal(v.Query, &s) != nil {
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
			q.Query = s
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil || !known[m[1]][m[2]] {
			t.Errorf("variable %s: query %q is not label_values of an exported metric and one of its labels", v.Name, q.Query)
		}
	}
	for _, d := range Defs() {
		if !drawn[d.Name] {
			t.Errorf("%s is on no panel of the dashboard", d.Name)
		}
	}
}

// panel is what TestDashboard reads of a Grafana panel.
type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}
