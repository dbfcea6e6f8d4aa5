package deploytest

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeBuild is `kubectl kustomize dir` through the kustomize library.
func kustomizeBuild(t *testing.T, dir string) []byte {
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
	return out
}

// TestKustomize builds the base and the dev overlay and checks them like
// the chart's output.
func TestKustomize(t *testing.T) {
	k8s := filepath.Join(repoRoot(t), "deploy", "k8s")
	want := expect{targets: targets, preStop: 10, window: 20, margin: 15, networkPolicies: true, gatewayServiceType: corev1.ServiceTypeLoadBalancer}
	tests := []struct {
		name  string
		dir   string
		check func(t *testing.T, objs *objects)
	}{
		{
			name: "base",
			dir:  filepath.Join(k8s, "base"),
			check: func(t *testing.T, objs *objects) {
				for _, d := range objs.Deployments {
					if d.Namespace != "" {
						t.Errorf("the base sets namespace %q on %s; leave it to overlays", d.Namespace, d.Name)
					}
				}
				blob := configOf(t, objs, "blob")
				if blob["blob.s3.access-key-file"] == "" {
					t.Errorf("blob.yaml reads no key file: %v", blob)
				}
			},
		},
		{
			name: "dev",
			dir:  filepath.Join(k8s, "overlays", "dev"),
			check: func(t *testing.T, objs *objects) {
				names := map[string]bool{}
				for _, d := range objs.Deployments {
					names[d.Name] = true
					if d.Namespace != "mailstore-dev" {
						t.Errorf("Deployment %s in namespace %q, want mailstore-dev", d.Name, d.Namespace)
					}
					if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
						t.Errorf("Deployment %s: replicas %v, want 1", d.Name, d.Spec.Replicas)
					}
				}
				if !names["redis"] || !names["minio"] {
					t.Errorf("the dev overlay lacks Redis or MinIO: %v", keys(names))
				}
				blob := configOf(t, objs, "blob")
				if blob["blob.s3.endpoint"] != "minio:9000" || blob["blob.s3.path-style"] != "true" || blob["blob.s3.insecure"] != "true" {
					t.Errorf("blob.yaml = %v, want the dev MinIO", blob)
				}
				if configOf(t, objs, "metadata")["metadata.redis.addrs"] != "redis:6379" {
					t.Error("metadata.yaml does not point at the dev Redis")
				}
				// Generated names (hash suffixes) must be what the pods mount.
				secrets := secretNames(objs)
				b := findDeployment(objs, "mailstore-blob")
				v := findVolume(b.Spec.Template.Spec, "s3-auth")
				if v == nil || !secrets[v.Secret.SecretName] || !strings.HasPrefix(v.Secret.SecretName, "mailstore-s3-") {
					t.Errorf("the blob pods mount %+v, not the generated mailstore-s3 Secret (have %v)", v, secrets)
				}
				m := findDeployment(objs, "minio")
				if ref := m.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef; ref == nil || !secrets[ref.Name] {
					t.Errorf("MinIO reads its root user from %+v, which is not rendered", ref)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := decodeAll(t, kustomizeBuild(t, tc.dir))
			checkObjects(t, objs, want)
			tc.check(t, objs)
		})
	}
}
