package packaging

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/idsync/idsync/configs"
)

var k8sDir = filepath.Join(repoRoot, "configs", "kubernetes")

// kustomization is the part of kustomize's Kustomization these manifests use; decoded
// strictly, so a misspelt or unexpected field fails.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
}

// manifests are the decoded objects of configs/kubernetes, one of each kind.
type manifests struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	pvc        *corev1.PersistentVolumeClaim
	configMap  *corev1.ConfigMap
	secret     *corev1.Secret
}

// loadManifests decodes every resource the kustomization lists STRICTLY into its k8s.io/api
// type (unknown or duplicate fields are errors), after checking that the kustomization lists
// exactly the YAML files of the folder.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := k8syaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	if k.Namespace != "" {
		t.Errorf("kustomization.yaml sets namespace %q: the manifests are namespace-agnostic", k.Namespace)
	}
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			onDisk = append(onDisk, b)
		}
	}
	listed := slices.Clone(k.Resources)
	sort.Strings(listed)
	if !slices.Equal(listed, onDisk) {
		t.Errorf("kustomization.yaml lists %v, the folder holds %v", listed, onDisk)
	}

	var m manifests
	for _, name := range k.Resources {
		data, err := os.ReadFile(filepath.Join(k8sDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`(?m)^---`).Match(data) {
			t.Errorf("%s: one object per file", name)
		}
		var tm metav1.TypeMeta
		if err := k8syaml.Unmarshal(data, &tm); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var obj interface{ GetNamespace() string }
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			m.deployment = &appsv1.Deployment{}
			obj = m.deployment
		case "v1 Service":
			m.service = &corev1.Service{}
			obj = m.service
		case "v1 PersistentVolumeClaim":
			m.pvc = &corev1.PersistentVolumeClaim{}
			obj = m.pvc
		case "v1 ConfigMap":
			m.configMap = &corev1.ConfigMap{}
			obj = m.configMap
		case "v1 Secret":
			m.secret = &corev1.Secret{}
			obj = m.secret
		default:
			t.Fatalf("%s: unexpected %s %s", name, tm.APIVersion, tm.Kind)
		}
		if err := k8syaml.UnmarshalStrict(data, obj); err != nil {
			t.Fatalf("%s (strict): %v", name, err)
		}
		if ns := obj.GetNamespace(); ns != "" {
			t.Errorf("%s sets namespace %q: the manifests are namespace-agnostic", name, ns)
		}
	}
	if m.deployment == nil || m.service == nil || m.pvc == nil || m.configMap == nil || m.secret == nil {
		t.Fatalf("want a Deployment, Service, PersistentVolumeClaim, ConfigMap and Secret: %+v", m)
	}
	return m
}

func TestKubernetesStrictDecodeCatchesTypos(t *testing.T) {
	// The decoder the manifests go through refuses an unknown field (a typo would otherwise
	// be dropped silently and apply as a default).
	bad := "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  prots: []\n"
	if err := k8syaml.UnmarshalStrict([]byte(bad), &corev1.Service{}); err == nil {
		t.Fatal("strict decoding accepted an unknown field")
	}
}

// daemonRoutes are the GET routes internal/daemon/http.go registers on its mux, read from the
// source so that a renamed route fails this test.
func daemonRoutes(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "internal", "daemon", "http.go"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("GET (/[a-z/]*)"`).FindAllSubmatch(src, -1) {
		routes = append(routes, string(m[1]))
	}
	if !slices.Contains(routes, "/healthz") || !slices.Contains(routes, "/readyz") {
		t.Fatalf("did not find /healthz and /readyz among the daemon's routes %v", routes)
	}
	return routes
}

func TestKubernetesDeployment(t *testing.T) {
	m := loadManifests(t)
	d := m.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %s, want exactly 1 (two daemons must never write one site)", fmtPtr(d.Spec.Replicas))
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q, want Recreate (the old pod releases the state volume first)", d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	podLabels := d.Spec.Template.Labels
	for k, v := range d.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("selector %s=%s does not match the pod's labels %v", k, v, podLabels)
		}
	}
	for k, v := range m.service.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod's labels %v", k, v, podLabels)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"-c", ConfigPath}) || len(c.Command) != 0 {
		t.Errorf("command %q args %q: want the image's entrypoint with -c %s", c.Command, c.Args, ConfigPath)
	}

	// Security context: the pod's and the container's.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != UID ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, runAsUser %d, seccomp RuntimeDefault", psc, UID)
	}
	csc := c.SecurityContext
	switch {
	case csc == nil:
		t.Fatal("container has no securityContext")
	case csc.RunAsNonRoot == nil || !*csc.RunAsNonRoot, csc.RunAsUser == nil || *csc.RunAsUser != UID:
		t.Errorf("container runs as %v (nonroot %v), want %d", csc.RunAsUser, csc.RunAsNonRoot, UID)
	case csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem:
		t.Error("container root filesystem is writable")
	case csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation:
		t.Error("container allows privilege escalation")
	case csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) != 0:
		t.Errorf("capabilities %+v, want drop ALL and add none", csc.Capabilities)
	case csc.SeccompProfile == nil || csc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("container seccomp profile is not RuntimeDefault")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it does not need")
	}

	// Resources: requests and limits of CPU and memory.
	for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := rl[r]; !ok || q.Sign() <= 0 {
				t.Errorf("no %s in requests/limits %v", r, rl)
			}
		}
	}
	if lim, req := c.Resources.Limits[corev1.ResourceMemory], c.Resources.Requests[corev1.ResourceMemory]; lim.Cmp(req) < 0 ||
		lim.Cmp(resource.MustParse("512Mi")) < 0 {
		t.Errorf("memory limit %v: want at least the request %v and 512Mi (a 100k-user first sync peaks near 500 MiB)", &lim, &req)
	}

	// Ports and probes: the container's port is the config's listen port and the Service's
	// target; probes ask routes the daemon serves, and never /readyz (see deployment.yaml).
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != Port || c.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("container ports %+v, want %d/TCP", c.Ports, Port)
	}
	port := c.Ports[0]
	resolve := func(what string, p intstr.IntOrString) int32 {
		if p.Type == intstr.String {
			if p.StrVal != port.Name {
				t.Errorf("%s names port %q, the container's is %q", what, p.StrVal, port.Name)
			}
			return port.ContainerPort
		}
		return p.IntVal
	}
	if len(m.service.Spec.Ports) != 1 {
		t.Fatalf("Service ports %+v", m.service.Spec.Ports)
	}
	sp := m.service.Spec.Ports[0]
	if got := resolve("Service targetPort", sp.TargetPort); got != Port || sp.Port != Port {
		t.Errorf("Service port %d -> %d, want %d -> %d", sp.Port, got, Port, Port)
	}
	routes := daemonRoutes(t)
	probes := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe}
	for name, p := range probes {
		if p == nil {
			if name != "startup" {
				t.Errorf("no %s probe", name)
			}
			continue
		}
		switch {
		case p.HTTPGet != nil:
			if !slices.Contains(routes, p.HTTPGet.Path) {
				t.Errorf("%s probe asks %s, which the daemon does not serve (%v)", name, p.HTTPGet.Path, routes)
			}
			if p.HTTPGet.Path == "/readyz" {
				t.Errorf("%s probe on /readyz: it fails during a source outage and would cut off the SCIM listener or restart a healthy daemon", name)
			}
			if p.HTTPGet.Scheme != "" && p.HTTPGet.Scheme != corev1.URISchemeHTTP {
				t.Errorf("%s probe scheme %s: the config serves plain HTTP", name, p.HTTPGet.Scheme)
			}
			if got := resolve(name+" probe", p.HTTPGet.Port); got != Port {
				t.Errorf("%s probe port %d, want %d", name, got, Port)
			}
		case p.TCPSocket != nil:
			if got := resolve(name+" probe", p.TCPSocket.Port); got != Port {
				t.Errorf("%s probe port %d, want %d", name, got, Port)
			}
		default:
			t.Errorf("%s probe is neither httpGet nor tcpSocket", name)
		}
	}

	// Volumes: the state on the PVC (ReadWriteOnce), the config from the ConfigMap at the
	// image's config path, the secrets from the Secret.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm
		if _, ok := vols[vm.Name]; !ok {
			t.Errorf("mount %s uses undefined volume %s", vm.MountPath, vm.Name)
		}
	}
	state, ok := mounts[StateDir]
	if !ok || vols[state.Name].PersistentVolumeClaim == nil || vols[state.Name].PersistentVolumeClaim.ClaimName != m.pvc.Name || state.ReadOnly {
		t.Errorf("%s is not the writable PVC %s: %+v", StateDir, m.pvc.Name, state)
	}
	if !slices.Equal(m.pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("PVC access modes %v, want ReadWriteOnce", m.pvc.Spec.AccessModes)
	}
	if q, ok := m.pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.Sign() <= 0 {
		t.Error("PVC requests no storage")
	}
	cfgMount, ok := mounts[ConfigPath]
	if !ok || vols[cfgMount.Name].ConfigMap == nil || vols[cfgMount.Name].ConfigMap.Name != m.configMap.Name || !cfgMount.ReadOnly {
		t.Fatalf("%s is not the ConfigMap %s, read-only: %+v", ConfigPath, m.configMap.Name, cfgMount)
	}
	if _, ok := m.configMap.Data[cfgMount.SubPath]; !ok {
		t.Fatalf("the config mount takes key %q, which the ConfigMap lacks", cfgMount.SubPath)
	}
	if d.Spec.Template.Spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds")
	}
}

// TestKubernetesConfigWiring checks the ConfigMap's idsync.yaml against the rest: every
// *_file is a key of the mounted Secret, the state file is on the volume, listen is the
// container's port, and the file validates with the project's own config package.
func TestKubernetesConfigWiring(t *testing.T) {
	m := loadManifests(t)
	c := m.deployment.Spec.Template.Spec.Containers[0]
	vols := map[string]corev1.Volume{}
	for _, v := range m.deployment.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	var cfgKey, secretMount string
	for _, vm := range c.VolumeMounts {
		v := vols[vm.Name]
		switch {
		case vm.MountPath == ConfigPath:
			cfgKey = vm.SubPath
		case v.Secret != nil:
			if v.Secret.SecretName != m.secret.Name {
				t.Errorf("volume %s mounts Secret %s, the manifest's is %s", v.Name, v.Secret.SecretName, m.secret.Name)
			}
			if secretMount != "" {
				t.Fatal("more than one Secret mounted")
			}
			secretMount = vm.MountPath
			if !vm.ReadOnly {
				t.Error("the secrets are mounted writable")
			}
		}
	}
	if secretMount == "" {
		t.Fatal("no Secret mounted")
	}
	cfgText := m.configMap.Data[cfgKey]

	secretKeys := map[string]string{}
	for k, v := range m.secret.StringData {
		secretKeys[k] = v
	}
	for k, v := range m.secret.Data {
		secretKeys[k] = string(v)
	}
	for k, v := range secretKeys {
		if !strings.Contains(v, "REPLACE-ME") {
			t.Errorf("Secret key %s holds a value not marked as a placeholder", k)
		}
	}

	// Every *_file of the config names a key of the mounted Secret, and every key is used.
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(cfgText), &raw); err != nil {
		t.Fatalf("the ConfigMap's %s: %v", cfgKey, err)
	}
	files := map[string]string{} // config path -> file
	collectFiles("", raw, files)
	if len(files) == 0 {
		t.Fatal("the config names no *_file secrets")
	}
	used := map[string]bool{}
	for p, f := range files {
		dir, key := path.Split(f)
		if path.Clean(dir) != secretMount {
			t.Errorf("%s: %s is not directly under the Secret's mount %s", p, f, secretMount)
			continue
		}
		if _, ok := secretKeys[key]; !ok {
			t.Errorf("%s: the Secret has no key %q", p, key)
		}
		used[key] = true
	}
	for k := range secretKeys {
		if !used[k] {
			t.Errorf("Secret key %s is not used by the config", k)
		}
	}

	// The config validates with the project's own loader. The secret files do not exist
	// here, so they are laid out in a temporary folder the way the kubelet mounts a Secret
	// (each key a symlink into ..data/), with the Secret's placeholder values, mode 0600 as
	// idsync's warnings want; the mount folders in the file are pointed there.
	tmp := t.TempDir()
	secDir := filepath.Join(tmp, "secrets")
	dataDir := filepath.Join(secDir, "..data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range secretKeys {
		if err := os.WriteFile(filepath.Join(dataDir, k), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(secDir, k)); err != nil {
			t.Fatal(err)
		}
	}
	stateDir := filepath.Join(tmp, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	local := strings.ReplaceAll(cfgText, secretMount+"/", secDir+"/")
	local = strings.ReplaceAll(local, StateDir+"/", stateDir+"/")
	cfgPath := filepath.Join(tmp, "idsync.yaml")
	if err := os.WriteFile(cfgPath, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"IDSYNC_CONFIG", "IDSYNC_LISTEN", "IDSYNC_STATE_PATH", "IDSYNC_ADMIN_TOKEN", "IDSYNC_SINK_JIRA_API_TOKEN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	cfg, err := configs.LoadAndValidate(cfgPath, nil)
	if err != nil {
		t.Fatalf("the ConfigMap's config does not validate:\n%v", err)
	}
	if cfg.AdminToken.Value() != secretKeys["admin-token"] {
		t.Error("the admin token was not read from the Secret's admin-token")
	}

	// The state file is on the state volume.
	if dir := filepath.Dir(cfg.State.Path); dir != stateDir {
		t.Errorf("state.path %s is not in the state volume %s", cfg.State.Path, StateDir)
	}
	// listen: every interface (probes and the Service reach the pod IP), the container port.
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatalf("listen %q: %v", cfg.Listen, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("listen %q: only the pod itself could reach it; listen on all interfaces", cfg.Listen)
	}
	if p, _ := strconv.Atoi(portStr); int32(p) != c.Ports[0].ContainerPort {
		t.Errorf("listen port %s, container port %d", portStr, c.Ports[0].ContainerPort)
	}
	if cfg.TLS.CertFile != "" {
		t.Error("the config serves TLS but the probes ask plain HTTP")
	}
	// The grace period covers the daemon's graceful stop.
	if grace := *m.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds; float64(grace) <= cfg.ShutdownTimeout.Seconds() {
		t.Errorf("terminationGracePeriodSeconds %d does not exceed shutdown_timeout %v", grace, cfg.ShutdownTimeout)
	}
}

// collectFiles records every string value of a key ending in _file, by its path.
func collectFiles(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if s, ok := val.(string); ok && strings.HasSuffix(k, "_file") && s != "" {
				out[p] = s
				continue
			}
			collectFiles(p, val, out)
		}
	case []any:
		for i, val := range x {
			collectFiles(fmt.Sprintf("%s[%d]", prefix, i), val, out)
		}
	}
}

func fmtPtr[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}
