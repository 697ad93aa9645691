package deploy

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kusttypes "sigs.k8s.io/kustomize/api/types"
)

const (
	image            = "ghcr.io/sweeperhq/sweeper:latest"
	nonRootUID       = 65532
	secretName       = "sweeper-secrets"
	secretTemplate   = manifestsDir + "/secret.example.yaml"
	placeholderToken = "REPLACE_ME"
)

// contractVars are the variables of contract §1; each may also be given as
// <NAME>_FILE, which reads the value from that file.
var contractVars = []string{
	"DATABASE_URL",
	"SWEEPER_HTTP_ADDR",
	"INTERLACE_BASE_URL",
	"INTERLACE_CLIENT_ID",
	"INTERLACE_CLIENT_SECRET",
	"INTERLACE_ACCESS_TOKEN",
	"INTERLACE_ACCOUNT_ID",
	"INTERLACE_WEBHOOK_SECRET",
	"INTERLACE_WEBHOOK_SECRET_PREVIOUS",
	"INTERLACE_WEBHOOK_SIGNED_PART",
	"SWEEPER_INFINITY_WALLET_ID",
	"SWEEPER_TARGET_CURRENCY",
	"SWEEPER_ADMIN_TOKEN",
	"SWEEPER_MAX_FEE_RATE",
	"SWEEPER_SWEEP_CURRENCIES",
	"SWEEPER_CONFIRM_DEPOSITS",
	"SWEEPER_POLL_INTERVAL",
	"SWEEPER_PENDING_MAX_AGE",
	"INTERLACE_AUTH_STYLE",
}

// secretVars hold credentials: they may only reach a pod as a file from a
// Secret, never as a literal, and never through the ConfigMap.
var secretVars = []string{
	"DATABASE_URL",
	"INTERLACE_CLIENT_ID",
	"INTERLACE_CLIENT_SECRET",
	"INTERLACE_ACCESS_TOKEN",
	"INTERLACE_WEBHOOK_SECRET",
	"INTERLACE_WEBHOOK_SECRET_PREVIOUS",
	"SWEEPER_ADMIN_TOKEN",
}

// wiredSecrets must be in the Secret and wired into the server's pods.
var wiredSecrets = []string{
	"DATABASE_URL",
	"INTERLACE_CLIENT_ID",
	"INTERLACE_CLIENT_SECRET",
	"INTERLACE_WEBHOOK_SECRET",
	"SWEEPER_ADMIN_TOKEN",
}

// requiredVars are what each command needs configured (internal/config's
// Need: serve needs the database and Interlace, migrate only the database).
var requiredVars = map[string][]string{
	"deployment/sweeper":  append(slices.Clone(wiredSecrets), "INTERLACE_ACCOUNT_ID"),
	"job/sweeper-migrate": {"DATABASE_URL"},
}

func TestManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	docs := loadManifests(t)
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[d.GVK.Kind]++
	}
	for _, k := range []string{"Kustomization", "ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service",
		"PodDisruptionBudget", "NetworkPolicy", "Job", "Cluster"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the manifests (have %v)", k, kinds)
		}
	}
	for _, d := range docs {
		m, ok := d.Obj.(metav1.Object)
		if !ok {
			continue // Kustomization
		}
		if m.GetName() == "" {
			t.Errorf("%s: metadata.name is empty", d)
		}
		// Namespace-agnostic: the namespace is chosen at apply time.
		if m.GetNamespace() != "" {
			t.Errorf("%s: metadata.namespace %q is set; the manifests must be namespace-agnostic", d, m.GetNamespace())
		}
	}
}

// The decoder must be strict, or every other test here proves little.
func TestDecodeStrictRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		kind bool // errUnknownKind expected
	}{
		{name: "UnknownKind", kind: true, doc: "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n"},
		{name: "UnknownGroupVersion", kind: true, doc: "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: x}\n"},
		{name: "MissingKind", kind: true, doc: "apiVersion: v1\nmetadata: {name: x}\n"},
		{name: "UnknownField", doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n"},
		{name: "UnknownNestedField", doc: "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80, targetport: http}]}\n"},
		{name: "CaseMismatchedField", doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {Replicas: 2}\n"},
		{name: "DuplicateKey", doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: '1', A: '2'}\n"},
		{name: "WrongType", doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n"},
		{name: "YAML11Boolean", doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {FLAG: yes}\n"},
		{name: "CNPGUnknownSpecField", doc: "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {instances: 3, instance: 3}\n"},
		{name: "CNPGUnknownInitDBField", doc: "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {instances: 3, bootstrap: {initdb: {database: a, owners: a}}}\n"},
		{name: "KustomizationUnknownField", doc: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresource: [a.yaml]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := decodeStrict([]byte(tt.doc))
			if err == nil {
				t.Fatal("decoded without error")
			}
			if got := errors.Is(err, errUnknownKind); got != tt.kind {
				t.Fatalf("errors.Is(err, errUnknownKind) = %v, want %v (err: %v)", got, tt.kind, err)
			}
		})
	}
	// And it accepts what it should, or the rejections above prove nothing.
	if _, _, err := decodeStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n")); err != nil {
		t.Fatalf("valid document rejected: %v", err)
	}
}

func TestKustomizations(t *testing.T) {
	t.Parallel()
	docs := loadManifests(t)
	listed := map[string]string{} // resource file -> kustomization listing it
	nKust := 0
	for _, d := range docs {
		k, ok := d.Obj.(*kusttypes.Kustomization)
		if !ok {
			continue
		}
		nKust++
		if path.Base(d.Path) != "kustomization.yaml" {
			t.Errorf("%s: a Kustomization must be in a file named kustomization.yaml", d)
		}
		if k.Namespace != "" {
			t.Errorf("%s: namespace %q set; the base must stay namespace-agnostic", d, k.Namespace)
		}
		//lint:ignore SA1019 reading the deprecated field is the point: it must stay unused.
		if len(k.CommonLabels) > 0 {
			t.Errorf("%s: commonLabels is deprecated (and rewrites immutable selectors); use labels", d)
		}
		dir := path.Dir(d.Path)
		if len(k.Resources) == 0 {
			t.Errorf("%s: no resources", d)
		}
		for _, r := range k.Resources {
			p := path.Join(dir, r)
			st, err := os.Stat(p)
			if err != nil {
				t.Errorf("%s: resource %q: %v", d, r, err)
				continue
			}
			if st.IsDir() {
				if _, err := os.Stat(path.Join(p, "kustomization.yaml")); err != nil {
					t.Errorf("%s: resource directory %q has no kustomization.yaml", d, r)
				}
				continue
			}
			if prev, dup := listed[p]; dup {
				t.Errorf("%s: %s is already listed by %s", d, p, prev)
			}
			listed[p] = d.Path
		}
	}
	if nKust == 0 {
		t.Fatal("no kustomization.yaml")
	}
	if by, ok := listed[secretTemplate]; ok {
		t.Errorf("%s lists %s: the secret template must never be applied", by, secretTemplate)
	}
	// Every manifest is reachable from a kustomization, so nothing is
	// silently left out of `kubectl apply -k`.
	for _, f := range yamlFiles(t, manifestsDir) {
		if path.Base(f) == "kustomization.yaml" || f == secretTemplate {
			continue
		}
		if _, ok := listed[f]; !ok {
			t.Errorf("%s is in no kustomization's resources", f)
		}
	}
	// An overlay may retag the image; the base must not point elsewhere.
	for _, d := range docs {
		k, ok := d.Obj.(*kusttypes.Kustomization)
		if !ok {
			continue
		}
		for _, img := range k.Images {
			if img.Name == strings.Split(image, ":")[0] && img.NewName != "" {
				t.Errorf("%s renames the image to %q", d, img.NewName)
			}
		}
	}
}

func TestDeployment(t *testing.T) {
	t.Parallel()
	docs := loadManifests(t)
	dep := only[*appsv1.Deployment](t, docs, "sweeper")

	if dep.Spec.Replicas == nil {
		t.Error("replicas unset (defaults to 1), want >= 2")
	} else if *dep.Spec.Replicas < 2 {
		t.Errorf("replicas = %d, want >= 2", *dep.Spec.Replicas)
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("selector %v: %v", dep.Spec.Selector, err)
	}
	podLabels := labels.Set(dep.Spec.Template.Labels)
	if !sel.Matches(podLabels) {
		t.Errorf("selector %s does not match the pod template labels %v", sel, podLabels)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != image {
		t.Errorf("image = %q, want %q", c.Image, image)
	}
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("args = %q, want [serve]", c.Args)
	}
	var httpPort *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "http" {
			httpPort = &c.Ports[i]
		}
	}
	if httpPort == nil || httpPort.ContainerPort != 8080 {
		t.Fatalf("want port `http` 8080, have %+v", c.Ports)
	}

	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	}
	for _, p := range probes {
		switch {
		case p.probe == nil:
			t.Errorf("%s missing", p.name)
		case p.probe.HTTPGet == nil:
			t.Errorf("%s is not an HTTP GET", p.name)
		case p.probe.HTTPGet.Path != p.path:
			t.Errorf("%s path = %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		case p.probe.HTTPGet.Port != intstr.FromString("http") && p.probe.HTTPGet.Port != intstr.FromInt32(8080):
			t.Errorf("%s port = %v, want http", p.name, p.probe.HTTPGet.Port)
		}
	}

	// Grace period: the preStop sleep plus sweeper's own drain must fit in it.
	grace := pod.TerminationGracePeriodSeconds
	if grace == nil || *grace != 40 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 40", ptrString(grace))
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil && grace != nil {
		if s := c.Lifecycle.PreStop.Sleep.Seconds; s >= *grace/2 {
			t.Errorf("preStop sleep %ds leaves too little of the %ds grace period for the drain", s, *grace)
		}
	}

	if !spreadsAcrossNodes(pod, podLabels) {
		t.Error("no topology spread constraint or pod anti-affinity on kubernetes.io/hostname that selects the pods")
	}

	ann := dep.Spec.Template.Annotations
	want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("pod annotation %s = %q, want %q", k, ann[k], v)
		}
	}

	checkPodSecurity(t, "deployment/sweeper", pod)
	checkResources(t, "deployment/sweeper", c, "100m", "64Mi", "1", "256Mi")

	// The Service, the PDB and the NetworkPolicy must select these pods.
	svc := only[*corev1.Service](t, docs, "sweeper")
	if svc.Spec.Type != corev1.ServiceTypeClusterIP && svc.Spec.Type != "" {
		t.Errorf("service type = %s, want ClusterIP", svc.Spec.Type)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("service selector %v does not match the pods %v", svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 ||
		(svc.Spec.Ports[0].TargetPort != intstr.FromString("http") && svc.Spec.Ports[0].TargetPort != intstr.FromInt32(8080)) {
		t.Errorf("service ports = %+v, want 80 -> http", svc.Spec.Ports)
	}

	pdb := only[*policyv1.PodDisruptionBudget](t, docs, "sweeper")
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) {
		t.Errorf("pdb minAvailable = %v, want 1", pdb.Spec.MinAvailable)
	}
	if pdbSel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || pdbSel.Empty() || !pdbSel.Matches(podLabels) {
		t.Errorf("pdb selector %v does not match the pods (%v)", pdb.Spec.Selector, err)
	}

	for _, np := range all[*networkingv1.NetworkPolicy](docs) {
		npSel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || npSel.Empty() || !npSel.Matches(podLabels) {
			t.Errorf("networkpolicy %s selector does not match the pods (%v)", np.Name, err)
		}
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		allowsHTTP := false
		for _, in := range np.Spec.Ingress {
			for _, p := range in.Ports {
				if p.Port != nil && (*p.Port == intstr.FromString("http") || *p.Port == intstr.FromInt32(8080)) {
					allowsHTTP = true
				}
			}
		}
		if !allowsHTTP {
			t.Errorf("networkpolicy %s does not admit the http port", np.Name)
		}
	}
}

func spreadsAcrossNodes(pod corev1.PodSpec, podLabels labels.Set) bool {
	for _, tsc := range pod.TopologySpreadConstraints {
		if tsc.TopologyKey != "kubernetes.io/hostname" || tsc.MaxSkew != 1 {
			continue
		}
		if s, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector); err == nil && !s.Empty() && s.Matches(podLabels) {
			return true
		}
	}
	if pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil {
		return false
	}
	aa := pod.Affinity.PodAntiAffinity
	terms := slices.Clone(aa.RequiredDuringSchedulingIgnoredDuringExecution)
	for _, w := range aa.PreferredDuringSchedulingIgnoredDuringExecution {
		terms = append(terms, w.PodAffinityTerm)
	}
	for _, term := range terms {
		if term.TopologyKey != "kubernetes.io/hostname" {
			continue
		}
		if s, err := metav1.LabelSelectorAsSelector(term.LabelSelector); err == nil && !s.Empty() && s.Matches(podLabels) {
			return true
		}
	}
	return false
}

func TestMigrateJob(t *testing.T) {
	t.Parallel()
	docs := loadManifests(t)
	job := only[*batchv1.Job](t, docs, "sweeper-migrate")
	if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit < 1 {
		t.Errorf("backoffLimit = %s, want >= 1", ptrString(job.Spec.BackoffLimit))
	}
	if job.Spec.TTLSecondsAfterFinished == nil {
		t.Error("ttlSecondsAfterFinished not set: the finished Job would block the next apply (immutable template)")
	}
	pod := job.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever && pod.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy = %q", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != image {
		t.Errorf("image = %q, want %q", c.Image, image)
	}
	if !slices.Equal(c.Args, []string{"migrate"}) {
		t.Errorf("args = %q, want [migrate]", c.Args)
	}
	checkPodSecurity(t, "job/sweeper-migrate", pod)
	checkResources(t, "job/sweeper-migrate", c, "", "", "", "")
}

// checkPodSecurity asserts the restricted Pod Security Standard and more.
func checkPodSecurity(t *testing.T, name string, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false", name)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: uses host namespaces", name)
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		where := name + "/" + c.Name
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", where)
			continue
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = psc.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			t.Errorf("%s: runAsNonRoot is not true", where)
		}
		uid := sc.RunAsUser
		if uid == nil {
			uid = psc.RunAsUser
		}
		if uid == nil || *uid != nonRootUID {
			t.Errorf("%s: runAsUser = %s, want %d", where, ptrString(uid), nonRootUID)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", where)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", where)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add nothing, have %+v", where, sc.Capabilities)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: seccompProfile is not RuntimeDefault", where)
		}
	}
}

// checkResources asserts requests and limits exist and, when given, equal
// the wanted values.
func checkResources(t *testing.T, name string, c corev1.Container, reqCPU, reqMem, limCPU, limMem string) {
	t.Helper()
	check := func(list corev1.ResourceList, kind string, res corev1.ResourceName, want string) {
		got, ok := list[res]
		if !ok {
			t.Errorf("%s: no %s %s", name, res, kind)
			return
		}
		if want != "" && got.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("%s: %s %s = %s, want %s", name, res, kind, got.String(), want)
		}
	}
	check(c.Resources.Requests, "request", corev1.ResourceCPU, reqCPU)
	check(c.Resources.Requests, "request", corev1.ResourceMemory, reqMem)
	check(c.Resources.Limits, "limit", corev1.ResourceCPU, limCPU)
	check(c.Resources.Limits, "limit", corev1.ResourceMemory, limMem)
}

// TestEnvironment checks every variable a sweeper pod receives against the
// contract, and that secrets only travel as files from the Secret.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	docs := loadManifests(t)

	secret := only[*corev1.Secret](t, docs, secretName)
	secretKeys := map[string]bool{}
	for k, v := range secret.StringData {
		secretKeys[k] = true
		if !strings.Contains(v, placeholderToken) {
			t.Errorf("%s: %s = %q is not a clearly marked placeholder (%s)", secretTemplate, k, v, placeholderToken)
		}
	}
	for k := range secret.Data {
		secretKeys[k] = true
		t.Errorf("%s: use stringData with placeholders, not data (%s)", secretTemplate, k)
	}
	for k := range secretKeys {
		if !slices.Contains(secretVars, k) {
			t.Errorf("%s: key %s is not a secret variable of contract §1", secretTemplate, k)
		}
	}
	for _, k := range wiredSecrets {
		if !secretKeys[k] {
			t.Errorf("%s: key %s missing", secretTemplate, k)
		}
	}

	configMaps := map[string]*corev1.ConfigMap{}
	for _, cm := range all[*corev1.ConfigMap](docs) {
		configMaps[cm.Name] = cm
		for k := range cm.Data {
			if !slices.Contains(contractVars, k) {
				t.Errorf("configmap %s: %s is not a variable of contract §1", cm.Name, k)
			}
			if slices.Contains(secretVars, k) {
				t.Errorf("configmap %s: %s is a secret and belongs in the Secret", cm.Name, k)
			}
		}
	}

	pods := map[string]corev1.PodSpec{}
	type secretFiles struct {
		secret string
		keyOf  map[string]string // file name -> Secret key; nil: every key, under its own name
	}
	for _, d := range all[*appsv1.Deployment](docs) {
		pods["deployment/"+d.Name] = d.Spec.Template.Spec
	}
	for _, j := range all[*batchv1.Job](docs) {
		pods["job/"+j.Name] = j.Spec.Template.Spec
	}
	for name := range requiredVars {
		if _, ok := pods[name]; !ok {
			t.Errorf("%s not among the manifests", name)
		}
	}
	for name, pod := range pods {
		if _, ok := requiredVars[name]; !ok {
			t.Errorf("%s: unknown workload; add what it needs to requiredVars", name)
		}
		secretMounts := map[string]secretFiles{} // by mountPath
		volumes := map[string]corev1.Volume{}
		for _, v := range pod.Volumes {
			volumes[v.Name] = v
		}
		for _, c := range pod.Containers {
			where := name + "/" + c.Name
			for _, m := range c.VolumeMounts {
				if v, ok := volumes[m.Name]; ok && v.Secret != nil {
					if m.SubPath != "" {
						t.Errorf("%s: secret mount %s uses subPath (rotated secrets would never reach it)", where, m.MountPath)
					}
					sf := secretFiles{secret: v.Secret.SecretName}
					if len(v.Secret.Items) > 0 {
						sf.keyOf = map[string]string{}
						for _, it := range v.Secret.Items {
							sf.keyOf[it.Path] = it.Key
							if v.Secret.SecretName == secretName && !secretKeys[it.Key] {
								t.Errorf("%s: volume %s projects key %q, which %s lacks (the pod would not start)", where, v.Name, it.Key, secretTemplate)
							}
						}
					}
					secretMounts[m.MountPath] = sf
				}
			}
			present := map[string]bool{}
			for _, ef := range c.EnvFrom {
				if ef.Prefix != "" {
					t.Errorf("%s: envFrom prefix %q renames the contract's variables", where, ef.Prefix)
				}
				switch {
				case ef.ConfigMapRef != nil:
					cm, ok := configMaps[ef.ConfigMapRef.Name]
					if !ok {
						t.Errorf("%s: envFrom ConfigMap %q is not among the manifests", where, ef.ConfigMapRef.Name)
						continue
					}
					for k := range cm.Data {
						present[k] = true
					}
				case ef.SecretRef != nil:
					t.Errorf("%s: envFrom Secret %q puts secrets in the environment; mount them and use *_FILE", where, ef.SecretRef.Name)
				}
			}
			for _, e := range c.Env {
				base, isFile := strings.CutSuffix(e.Name, "_FILE")
				if !slices.Contains(contractVars, base) {
					t.Errorf("%s: %s is neither a variable of contract §1 nor its _FILE variant", where, e.Name)
					continue
				}
				present[base] = true
				if !isFile {
					if slices.Contains(secretVars, base) {
						t.Errorf("%s: secret %s given as a literal or env reference; use %s_FILE", where, e.Name, e.Name)
					}
					continue
				}
				if e.ValueFrom != nil || e.Value == "" {
					t.Errorf("%s: %s must be a literal file path", where, e.Name)
					continue
				}
				dir, file := path.Split(e.Value)
				sf, ok := secretMounts[strings.TrimSuffix(dir, "/")]
				key := file
				if ok && sf.keyOf != nil {
					key, ok = sf.keyOf[file]
				}
				switch {
				case !ok:
					t.Errorf("%s: %s = %s is not a file of a mounted Secret volume", where, e.Name, e.Value)
				case sf.secret != secretName:
					t.Errorf("%s: %s reads from Secret %q, want %q", where, e.Name, sf.secret, secretName)
				case !secretKeys[key]:
					t.Errorf("%s: %s = %s, but %s has no key %q", where, e.Name, e.Value, secretTemplate, key)
				case key != base:
					t.Errorf("%s: %s reads key %s; keep key and variable names equal", where, e.Name, key)
				}
			}
			for _, required := range requiredVars[name] {
				if !present[required] {
					t.Errorf("%s: %s is not configured", where, required)
				}
			}
		}
	}
}

func TestPostgresCluster(t *testing.T) {
	t.Parallel()
	docs := loadManifests(t)
	c := only[*cnpgCluster](t, docs, "sweeper-db")
	for _, err := range validateCNPGCluster(c) {
		t.Error(err)
	}
	s := c.Spec
	if s.Instances != 3 {
		t.Errorf("instances = %d, want 3", s.Instances)
	}
	if s.Bootstrap == nil || s.Bootstrap.InitDB == nil {
		t.Fatal("no bootstrap.initdb")
	}
	if db := s.Bootstrap.InitDB; db.Database != "sweeper" || db.Owner != "sweeper" {
		t.Errorf("initdb database/owner = %q/%q, want sweeper/sweeper", db.Database, db.Owner)
	}
	if s.StorageConfiguration.Size == "" && s.StorageConfiguration.PersistentVolumeClaimTemplate == nil {
		t.Error("no storage size")
	}
	if s.Monitoring == nil || !s.Monitoring.EnablePodMonitor {
		t.Error("monitoring.enablePodMonitor is not true")
	}
	if s.EnableSuperuserAccess == nil || *s.EnableSuperuserAccess {
		t.Error("enableSuperuserAccess must be explicitly false: the service needs no superuser")
	}
	if s.Managed != nil {
		for _, r := range s.Managed.Roles {
			if r.Superuser || r.CreateRole || r.CreateDB || r.Replication || r.BypassRLS {
				t.Errorf("managed role %s has elevated attributes", r.Name)
			}
		}
	}
	// The DATABASE_URL placeholder points at the cluster's read-write service.
	secret := only[*corev1.Secret](t, docs, secretName)
	if u := secret.StringData["DATABASE_URL"]; !strings.Contains(u, c.Name+"-rw") {
		t.Errorf("DATABASE_URL placeholder %q does not use the %s-rw service", u, c.Name)
	}
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "<unset>"
	}
	return fmt.Sprint(*p)
}
