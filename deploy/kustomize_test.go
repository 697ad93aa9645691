package deploy

import (
	"cmp"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeBuild runs what `kubectl apply -k dir` renders, in process, and
// decodes every rendered object strictly.
func kustomizeBuild(t *testing.T, dir string) []document {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	raws, err := splitYAML(out)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var docs []document
	for i, raw := range raws {
		gvk, obj, err := decodeStrict(raw)
		if err != nil {
			t.Fatalf("kustomize build %s, object %d: %v", dir, i, err)
		}
		docs = append(docs, document{Path: "build:" + dir, Index: i, GVK: gvk, Obj: obj})
	}
	return docs
}

type objectKey struct{ kind, name string }

func keys(docs []document) []objectKey {
	var out []objectKey
	for _, d := range docs {
		if m, ok := d.Obj.(metav1.Object); ok {
			out = append(out, objectKey{d.GVK.Kind, m.GetName()})
		}
	}
	slices.SortFunc(out, func(a, b objectKey) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name))
	})
	return out
}

func TestKustomizeBuild(t *testing.T) {
	t.Parallel()
	files := loadManifests(t)
	for _, d := range files {
		k, ok := d.Obj.(*kusttypes.Kustomization)
		if !ok {
			continue
		}
		dir := path.Dir(d.Path)
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			built := kustomizeBuild(t, dir)
			// The build renders exactly the files the kustomization lists.
			var listed []document
			for _, f := range files {
				if slices.Contains(k.Resources, path.Base(f.Path)) && path.Dir(f.Path) == dir {
					listed = append(listed, f)
				}
			}
			if got, want := keys(built), keys(listed); !slices.Equal(got, want) {
				t.Errorf("rendered %v, want %v", got, want)
			}
			for _, b := range built {
				m, ok := b.Obj.(metav1.Object)
				if !ok {
					continue
				}
				if m.GetLabels()["app.kubernetes.io/part-of"] != "sweeper" {
					t.Errorf("%s %s: no app.kubernetes.io/part-of=sweeper label", b.GVK.Kind, m.GetName())
				}
				if m.GetNamespace() != "" {
					t.Errorf("%s %s: namespace %q in the base", b.GVK.Kind, m.GetName(), m.GetNamespace())
				}
			}
			for _, dep := range all[*appsv1.Deployment](built) {
				if _, ok := dep.Spec.Selector.MatchLabels["app.kubernetes.io/part-of"]; ok {
					t.Errorf("deployment %s: the kustomization changed the (immutable) selector", dep.Name)
				}
				if img := dep.Spec.Template.Spec.Containers[0].Image; img != image {
					t.Errorf("deployment %s: rendered image %q, want %q", dep.Name, img, image)
				}
			}
		})
	}
}

// The overlay in README.md is what operators copy: it must build and do what
// the README says (namespace, pinned image, account id, production URL).
func TestReadmeOverlay(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n# my-overlay/kustomization.yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```yaml block starting with # my-overlay/kustomization.yaml")
	}
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "deploy", manifestsDir), os.DirFS(manifestsDir)); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(root, "my-overlay")
	if err := os.Mkdir(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), m[1], 0o644); err != nil {
		t.Fatal(err)
	}
	built := kustomizeBuild(t, overlay)
	if len(built) == 0 {
		t.Fatal("overlay rendered nothing")
	}
	for _, b := range built {
		if o, ok := b.Obj.(metav1.Object); ok && o.GetNamespace() != "sweeper" {
			t.Errorf("%s %s: namespace %q, want sweeper", b.GVK.Kind, o.GetName(), o.GetNamespace())
		}
	}
	const pinned = "ghcr.io/sweeperhq/sweeper:v1.0.0"
	for _, dep := range all[*appsv1.Deployment](built) {
		if img := dep.Spec.Template.Spec.Containers[0].Image; img != pinned {
			t.Errorf("deployment image %q, want %q", img, pinned)
		}
	}
	for _, job := range all[*batchv1.Job](built) {
		if img := job.Spec.Template.Spec.Containers[0].Image; img != pinned {
			t.Errorf("job image %q, want %q", img, pinned)
		}
	}
	cm := only[*corev1.ConfigMap](t, built, "sweeper-config")
	if got := cm.Data["INTERLACE_ACCOUNT_ID"]; got == "" || got == "REPLACE_WITH_INTERLACE_ACCOUNT_ID" {
		t.Errorf("INTERLACE_ACCOUNT_ID = %q: the overlay did not replace the placeholder", got)
	}
	if got := cm.Data["INTERLACE_BASE_URL"]; got != "https://api.interlace.money" {
		t.Errorf("INTERLACE_BASE_URL = %q, want production", got)
	}
}
