package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

const (
	// maxConfigSize bounds what Load reads: a config is a few KiB; a huge file is a mistake.
	maxConfigSize = 8 << 20
	// maxSecretSize bounds a *_file read: a token is short; a big file is the wrong file.
	maxSecretSize = 64 << 10
)

// Standard override flags and the keys they set (see BindFlags).
var flagKeys = []struct{ flag, key, usage string }{
	{"listen", "listen", "address of the HTTP listener (default " + DefaultListen + ")"},
	{"state", "state.path", "path of the state file (default " + DefaultStatePath + ")"},
	{"log-level", "log.level", "log level: trace, debug, info, warn, error (default info)"},
	{"log-format", "log.format", "log format: auto, json, console (default auto)"},
	{"schedule", "schedule", `cron spec or "@every 15m" (default "` + DefaultSchedule + `")`},
}

// BindFlags adds the standard override flags to fs: --listen, --state (state.path),
// --log-level, --log-format, --schedule. Their defaults are empty: only a flag given on the
// command line overrides the file and the environment.
func BindFlags(fs *pflag.FlagSet) {
	for _, f := range flagKeys {
		if fs.Lookup(f.flag) == nil {
			fs.String(f.flag, "", f.usage)
		}
	}
}

// Load reads the file at path and applies defaults, environment and changed flags (fs may be
// nil). It expands ${VAR} in every string value, resolves every secret (inline, *_file relative
// to the config file's folder, or env), and returns a *Problems error listing every problem
// found so far (unknown keys, wrong types, unreadable files) with field paths.
//
// Precedence, lowest first: built-in defaults, the file, IDSYNC_* variables (every key outside
// a list: IDSYNC_STATE_PATH, IDSYNC_SINK_JIRA_API_TOKEN, ...), flags. A secret given in the
// environment replaces the file's secret whichever form the file used; inline and *_file in the
// same layer is an error. ${NAME} is expanded in the file's string values only (not in the
// environment, not in secret files); $${ writes a literal ${; an unset NAME is an error.
//
// Load does not validate; call Validate, or LoadAndValidate for both in one report.
func Load(path string, fs *pflag.FlagSet) (*Config, error) {
	cfg, ps := load(path, fs)
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadAndValidate is Load followed by Validate, reporting the problems of both at once (what
// `idsync validate` and a config reload need). Validation problems caused by a load problem
// (a value that could not be decoded, a secret file that could not be read) are left out.
// On any problem the config is nil.
func LoadAndValidate(path string, fs *pflag.FlagSet) (*Config, error) {
	cfg, ps := load(path, fs)
	if cfg == nil {
		return nil, ps.Err()
	}
	if err := cfg.Validate(); err != nil {
		var vps *Problems
		if errors.As(err, &vps) {
			for _, p := range vps.List {
				if !ps.touches(p.Path) {
					ps.Add(p.Path, p.Msg, p.Err)
				}
			}
		}
	}
	if err := ps.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func load(path string, fs *pflag.FlagSet) (*Config, *Problems) {
	data, err := readConfigFile(path)
	if err != nil {
		ps := &Problems{}
		ps.Add("", fmt.Sprintf("reading config file: %v", err), ErrUnreadableFile)
		return nil, ps
	}
	return loadBytes(data, path, fs)
}

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than %d MiB", path, maxConfigSize>>20)
	}
	return data, nil
}

// loadBytes is Load on file contents already read; path locates relative *_file paths and
// names the file in messages. The returned config is nil only when the file cannot be used at
// all (syntax error, empty, not a mapping).
func loadBytes(data []byte, path string, fs *pflag.FlagSet) (*Config, *Problems) {
	ps := &Problems{}
	raw := parseYAML(data, path, ps)
	if raw == nil {
		return nil, ps
	}
	expandTree(raw, "", ps)
	checkKeys(raw, configType, "", ps)
	// The file alone, strictly: the merged view below can hide a wrong type under a default
	// (viper replaces a scalar "log: x" by the defaults' log map).
	decodeInto(raw, &Config{}, ps, nil)

	v := viper.New()
	setDefaults(v)
	if err := v.MergeConfigMap(deepCopyMap(raw)); err != nil {
		ps.Add("", fmt.Sprintf("merging the config file: %v", err), ErrInvalid)
		return nil, ps
	}
	walkLeafKeys(configType, "", func(key string, _ reflect.Type) {
		_ = v.BindEnv(key, envName(key)) // only fails without a key
	})
	flagged := map[string]string{}
	if fs != nil {
		for _, f := range flagKeys {
			if fl := fs.Lookup(f.flag); fl != nil && fl.Changed {
				_ = v.BindPFlag(f.key, fl) // only fails on a nil flag
				flagged[f.key] = f.flag
			}
		}
	}
	merged := v.AllSettings()
	cfg := &Config{}
	decodeInto(merged, cfg, ps, func(p string) string {
		if f, ok := flagged[p]; ok {
			return " (from --" + f + ")"
		}
		if envSet(p) {
			return " (from " + envName(p) + ")"
		}
		return ""
	})
	cfg.Path = path

	for i := range cfg.Sources {
		item := listItem(merged, "sources", i)
		fillSourceDefaults(&cfg.Sources[i], func(key string) bool {
			_, ok := lookupRaw(item, key)
			return ok
		})
	}
	if cfg.Sink.Jira != nil {
		fillAdminAPIDefaults(cfg.Sink.Jira, func(key string) bool {
			_, ok := lookupRaw(merged, "sink.jira.admin_api."+key)
			return ok
		})
	}
	fillBurst(cfg)
	resolveSecrets(cfg, ps)
	cfg.TLS.CertFile = cfg.resolvePath(cfg.TLS.CertFile)
	cfg.TLS.KeyFile = cfg.resolvePath(cfg.TLS.KeyFile)
	cfg.resolveLDAPPaths()
	cfg.resolveGooglePaths()
	return cfg, ps
}

// parseYAML decodes one YAML document into a map with string keys, or reports why it cannot.
func parseYAML(data []byte, path string, ps *Problems) map[string]any {
	name := path
	if name == "" {
		name = "config"
	}
	if len(bytes.TrimSpace(data)) == 0 {
		ps.Add("", name+": the file is empty (see configs/idsync.example.yaml)", ErrEmpty)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			ps.Add("", name+": the file holds no settings, only comments (see configs/idsync.example.yaml)", ErrEmpty)
			return nil
		}
		ps.Add("", name+": "+yamlMessage(err, data), ErrSyntax)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			ps.Add("", name+": "+yamlMessage(err, data), ErrSyntax)
		} else {
			ps.Add("", fmt.Sprintf("%s: line %d: a second YAML document (---); idsync reads one", name, extra.Line), ErrSyntax)
		}
		return nil
	}
	if doc == nil {
		ps.Add("", name+": the file holds no settings (see configs/idsync.example.yaml)", ErrEmpty)
		return nil
	}
	m, ok := normalize(doc).(map[string]any)
	if !ok {
		ps.Add("", name+": the top level must be a mapping of keys (listen: ..., sources: ...), got "+
			describeKind(reflect.ValueOf(doc)), ErrWrongType)
		return nil
	}
	return m
}

// yamlMessage words a YAML error with its line. The YAML reader reports bad bytes (invalid
// UTF-8, control characters) without one, so it is found here.
func yamlMessage(err error, data []byte) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	msg := strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n", " ")
	if !strings.Contains(msg, "line ") {
		msg = fmt.Sprintf("line %d: %s", badByteLine(data), msg)
	}
	return msg
}

// badByteLine is the line of the first byte YAML refuses (1 when there is none).
func badByteLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			return line
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 1
}

// normalize turns YAML maps with non-string keys into string-keyed ones (keys printed as
// written), so every map below is map[string]any.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
		return t
	}
	return v
}

func deepCopyMap(m map[string]any) map[string]any {
	return deepCopyValue(m).(map[string]any)
}

func deepCopyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopyValue(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = deepCopyValue(e)
		}
		return l
	}
	return v
}

func listItem(m map[string]any, key string, i int) map[string]any {
	l, ok := m[key].([]any)
	if !ok || i >= len(l) {
		return nil
	}
	item, _ := l[i].(map[string]any)
	return item
}

// setDefaults gives viper every non-zero leaf of Default().
func setDefaults(v *viper.Viper) {
	var walk func(rv reflect.Value, prefix string)
	walk = func(rv reflect.Value, prefix string) {
		for rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				return
			}
			rv = rv.Elem()
		}
		for i := range rv.NumField() {
			f := rv.Type().Field(i)
			k := keyOf(f)
			if k == "" {
				continue
			}
			key := joinKey(prefix, k)
			fv := rv.Field(i)
			if isBlock(f.Type) {
				walk(fv, key)
				continue
			}
			if !fv.IsZero() {
				v.SetDefault(key, fv.Interface())
			}
		}
	}
	walk(reflect.ValueOf(Default()), "")
}

func envSet(key string) bool { return os.Getenv(envName(key)) != "" }

// varRef matches $${ (an escaped dollar) and ${...} references.
var varRef = regexp.MustCompile(`\$\$\{|\$\{([^}]*)\}`)
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandTree expands ${NAME} in every string value of the decoded file, in place.
func expandTree(v any, path string, ps *Problems) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = expandTree(e, joinKey(path, k), ps)
		}
	case []any:
		for i, e := range t {
			t[i] = expandTree(e, fmt.Sprintf("%s[%d]", path, i), ps)
		}
	case string:
		if !strings.Contains(t, "${") {
			return t
		}
		return varRef.ReplaceAllStringFunc(t, func(ref string) string {
			if ref == "$${" {
				return "${"
			}
			name := ref[2 : len(ref)-1]
			if !varName.MatchString(name) {
				ps.Add(path, fmt.Sprintf("%q is not a variable reference: names are letters, digits and _ (write $${ for a literal ${)", truncate(ref, 40)), ErrInvalid)
				return ""
			}
			val, ok := os.LookupEnv(name)
			if !ok {
				ps.Add(path, fmt.Sprintf("environment variable %s is not set", name), ErrInvalid)
				return ""
			}
			return val
		})
	}
	return v
}

// secretRef ties an inline secret to its *_file twin.
type secretRef struct {
	path, filePath string // "sink.jira.api_token", "sink.jira.api_token_file"
	value          *Secret
	file           *string
	// env reports whether the environment can set this secret (keys outside lists).
	env bool
}

// secrets lists every secret of c with its field path.
func (c *Config) secrets() []secretRef {
	ref := func(path string, v *Secret, f *string, env bool) secretRef {
		return secretRef{path: path, filePath: path + "_file", value: v, file: f, env: env}
	}
	out := []secretRef{ref("admin_token", &c.AdminToken, &c.AdminTokenFile, true)}
	for i := range c.Sources {
		s := &c.Sources[i]
		p := fmt.Sprintf("sources[%d]", i)
		if s.MiniOrange != nil {
			out = append(out, ref(p+".miniorange.api_key", &s.MiniOrange.APIKey, &s.MiniOrange.APIKeyFile, false))
		}
		if s.SCIMPull != nil {
			out = append(out, ref(p+".scimpull.token", &s.SCIMPull.Token, &s.SCIMPull.TokenFile, false))
		}
		if s.LDAP != nil {
			out = append(out, ref(p+".ldap.bind_password", &s.LDAP.BindPassword, &s.LDAP.BindPasswordFile, false))
		}
		if s.Push != nil {
			out = append(out, ref(p+".push.token", &s.Push.Token, &s.Push.TokenFile, false),
				ref(p+".push.previous_token", &s.Push.PreviousToken, &s.Push.PreviousTokenFile, false))
		}
	}
	if j := c.Sink.Jira; j != nil {
		out = append(out, ref("sink.jira.api_token", &j.APIToken, &j.APITokenFile, true))
		if j.AdminAPI != nil {
			out = append(out, ref("sink.jira.admin_api.org_api_key", &j.AdminAPI.OrgAPIKey, &j.AdminAPI.OrgAPIKeyFile, true))
		}
	}
	return out
}

// resolveSecrets reads every *_file secret into its Secret field.
func resolveSecrets(c *Config, ps *Problems) {
	for _, s := range c.secrets() {
		if *s.value != "" && *s.file != "" {
			envV, envF := s.env && envSet(s.path), s.env && envSet(s.filePath)
			switch {
			case envV && !envF:
				*s.file = "" // the environment overrides the file's secret
			case envF && !envV:
				*s.value = ""
			default:
				ps.Add(s.path, fmt.Sprintf("give either %s or %s, not both", lastKey(s.path), lastKey(s.filePath)), ErrConflict)
				continue
			}
		}
		if *s.file == "" {
			continue
		}
		val, err := readSecretFile(c.resolvePath(*s.file))
		if err != nil {
			ps.Add(s.filePath, err.Error(), ErrUnreadableFile)
			continue
		}
		*s.value = Secret(val)
	}
}

// readSecretFile reads a secret, trimmed of its trailing line break. Only regular files are
// read: a FIFO or a device (/dev/stdin, /dev/zero) would block or never end.
func readSecretFile(p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("cannot read secret file %s: not a regular file", p)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read secret file %s: %w", p, err)
	}
	if len(data) > maxSecretSize {
		return "", fmt.Errorf("secret file %s is larger than %d KiB: is it the right file?", p, maxSecretSize>>10)
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", p)
	}
	return s, nil
}

// resolvePath makes a relative *_file path relative to the config file's folder.
func (c *Config) resolvePath(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// EnvVars lists the IDSYNC_* variables Load reads, sorted (for docs and `idsync validate`).
func EnvVars() []string {
	var out []string
	walkLeafKeys(configType, "", func(key string, _ reflect.Type) { out = append(out, envName(key)) })
	sort.Strings(out)
	return out
}
