package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// manifestsDir is where every Kubernetes document of this repository lives.
const manifestsDir = "kubernetes"

// errUnknownKind marks a document whose apiVersion/kind this test does not
// know: a new kind must be added to newObject (with its real API type), never
// slip through unchecked.
var errUnknownKind = errors.New("unknown apiVersion/kind")

// newObject returns an empty value of the real API type for gvk.
func newObject(gvk schema.GroupVersionKind) (any, error) {
	switch gvk {
	case appsv1.SchemeGroupVersion.WithKind("Deployment"):
		return &appsv1.Deployment{}, nil
	case corev1.SchemeGroupVersion.WithKind("ConfigMap"):
		return &corev1.ConfigMap{}, nil
	case corev1.SchemeGroupVersion.WithKind("Secret"):
		return &corev1.Secret{}, nil
	case corev1.SchemeGroupVersion.WithKind("Service"):
		return &corev1.Service{}, nil
	case corev1.SchemeGroupVersion.WithKind("ServiceAccount"):
		return &corev1.ServiceAccount{}, nil
	case batchv1.SchemeGroupVersion.WithKind("Job"):
		return &batchv1.Job{}, nil
	case policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"):
		return &policyv1.PodDisruptionBudget{}, nil
	case networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"):
		return &networkingv1.NetworkPolicy{}, nil
	case schema.GroupVersionKind{Group: "postgresql.cnpg.io", Version: "v1", Kind: "Cluster"}:
		return &cnpgCluster{}, nil
	case schema.GroupVersionKind{Group: "kustomize.config.k8s.io", Version: "v1beta1", Kind: kusttypes.KustomizationKind}:
		return &kusttypes.Kustomization{}, nil
	}
	return nil, fmt.Errorf("%w: %s", errUnknownKind, gvk)
}

// document is one decoded YAML document.
type document struct {
	Path  string // relative to the deploy module, slash-separated
	Index int    // position in a multi-document file
	GVK   schema.GroupVersionKind
	Obj   any // pointer to the typed object from newObject
}

func (d document) String() string { return fmt.Sprintf("%s#%d (%s)", d.Path, d.Index, d.GVK.Kind) }

// decodeStrict decodes one YAML document into the API type named by its
// apiVersion/kind, the way the API server's strict field validation does:
// unknown fields, duplicate keys and case-mismatched field names are errors
// (encoding/json alone would accept "Replicas" for "replicas").
func decodeStrict(doc []byte) (schema.GroupVersionKind, any, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return schema.GroupVersionKind{}, nil, fmt.Errorf("yaml: %w", err)
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return schema.GroupVersionKind{}, nil, fmt.Errorf("type meta: %w", err)
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return schema.GroupVersionKind{}, nil, fmt.Errorf("%w: apiVersion %q, kind %q", errUnknownKind, tm.APIVersion, tm.Kind)
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return schema.GroupVersionKind{}, nil, fmt.Errorf("apiVersion %q: %w", tm.APIVersion, err)
	}
	gvk := gv.WithKind(tm.Kind)
	obj, err := newObject(gvk)
	if err != nil {
		return gvk, nil, err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return gvk, nil, fmt.Errorf("decode %s: %w", gvk.Kind, err)
	}
	if len(strictErrs) > 0 {
		return gvk, nil, fmt.Errorf("decode %s strictly: %w", gvk.Kind, errors.Join(strictErrs...))
	}
	return gvk, obj, nil
}

// splitYAML returns the non-empty documents of a (multi-document) YAML file.
func splitYAML(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "" {
			continue // only comments or `---`
		}
		docs = append(docs, doc)
	}
}

// yamlFiles lists every .yaml/.yml file under dir, slash-separated and sorted.
func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	slices.Sort(files)
	if len(files) == 0 {
		t.Fatalf("no YAML files under %s", dir)
	}
	return files
}

// loadManifests decodes every document under kubernetes/ and fails the test
// on the first file that does not decode strictly.
func loadManifests(t *testing.T) []document {
	t.Helper()
	var out []document
	for _, p := range yamlFiles(t, manifestsDir) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitYAML(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(docs) == 0 {
			t.Fatalf("%s: no document", p)
		}
		for i, raw := range docs {
			gvk, obj, err := decodeStrict(raw)
			if err != nil {
				t.Fatalf("%s#%d: %v", p, i, err)
			}
			out = append(out, document{Path: p, Index: i, GVK: gvk, Obj: obj})
		}
	}
	return out
}

// only returns the single object of type T named name; it fails the test when
// there is none or more than one.
func only[T any](t *testing.T, docs []document, name string) T {
	t.Helper()
	var found []T
	for _, d := range docs {
		if o, ok := d.Obj.(T); ok {
			if m, ok := d.Obj.(metav1.Object); ok && m.GetName() == name {
				found = append(found, o)
			}
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want exactly one %T named %q, found %d", zero, name, len(found))
	}
	return found[0]
}

// all returns every object of type T.
func all[T any](docs []document) []T {
	var out []T
	for _, d := range docs {
		if o, ok := d.Obj.(T); ok {
			out = append(out, o)
		}
	}
	return out
}
