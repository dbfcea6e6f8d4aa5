package deploytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// helmCase is one value set of the chart.
type helmCase struct {
	name string
	// values are files under the chart's ci/ directory.
	values []string
	// extra values, written to a file by the test.
	extra map[string]any
	want  expect
	// check asserts what is special about this value set.
	check func(t *testing.T, objs *objects)
}

func helmCases(t *testing.T) []helmCase {
	all := targets
	cert := testCert(t)
	return []helmCase{
		{
			name: "defaults",
			want: expect{targets: all, preStop: 10, window: 20, margin: 15, networkPolicies: true, gatewayServiceType: corev1.ServiceTypeLoadBalancer},
			check: func(t *testing.T, objs *objects) {
				if len(objs.Secrets) != 0 {
					t.Errorf("%d Secrets rendered without credentials, want none", len(objs.Secrets))
				}
				cfg := configOf(t, objs, "metadata")
				if cfg["metadata.redis.cluster"] != "false" || cfg["metadata.redis.addrs"] != "redis:6379" {
					t.Errorf("metadata.yaml = %v, want a standalone Redis at redis:6379", cfg)
				}
				if len(objs.PDBs) != len(all) {
					t.Errorf("%d PodDisruptionBudgets, want %d", len(objs.PDBs), len(all))
				}
			},
		},
		{
			name:   "redis-cluster-tls-monitoring-hpa",
			values: []string{"cluster-tls-monitoring-values.yaml"},
			want: expect{targets: all, preStop: 15, window: 120, margin: 15, hpa: []string{"imap", "pop3", "lmtp"},
				serviceMonitor: true, networkPolicies: true, tls: true, gatewayServiceType: corev1.ServiceTypeLoadBalancer},
			check: func(t *testing.T, objs *objects) {
				meta := configOf(t, objs, "metadata")
				for k, v := range map[string]string{
					"metadata.redis.cluster":       "true",
					"metadata.redis.tls":           "true",
					"metadata.redis.password-file": "/etc/mailstore/secrets/redis/password",
					"metadata.redis.key-prefix":    "ms:",
					"metadata.redis.pool-size":     "50",
					"pop3.keep":                    "30d",
				} {
					if meta[k] != v {
						t.Errorf("metadata.yaml: %s = %q, want %q", k, meta[k], v)
					}
				}
				for _, target := range all {
					cfg := configOf(t, objs, target)
					for k, v := range map[string]string{
						"grpc.token-file":       "/etc/mailstore/secrets/grpc/token",
						"grpc.tls.ca-file":      "/etc/mailstore/grpc-tls/ca.crt",
						"tracing.otlp-endpoint": "otel-collector.observability.svc:4317",
						"tracing.sample-ratio":  "0.1",
					} {
						if cfg[k] != v {
							t.Errorf("%s.yaml: %s = %q, want %q", target, k, cfg[k], v)
						}
					}
					if gateways[target] && cfg["server.proxy-protocol.trusted-cidrs"] != "10.0.0.0/16,10.1.0.0/16" {
						t.Errorf("%s.yaml: PROXY protocol CIDRs %q", target, cfg["server.proxy-protocol.trusted-cidrs"])
					}
					d := findDeployment(objs, "release-name-mailstore-"+target)
					for _, vol := range []string{"grpc-token", "grpc-tls"} {
						if findVolume(d.Spec.Template.Spec, vol) == nil || findMount(d.Spec.Template.Spec.Containers[0], "/etc/mailstore/"+map[string]string{"grpc-token": "secrets/grpc", "grpc-tls": "grpc-tls"}[vol]) == nil {
							t.Errorf("%s pods do not mount %s", target, vol)
						}
					}
				}
				for _, np := range objs.NetworkPolicies {
					if !egressPorts(np)[4317] {
						t.Errorf("NetworkPolicy %s does not let traces out to the collector", np.Name)
					}
				}
				if _, ok := meta["metadata.redis.master-name"]; ok {
					t.Error("metadata.yaml names a Sentinel master for a cluster")
				}
				imap := configOf(t, objs, "imap")
				if imap["imap.tls.cert-file"] == "" || imap["ingest.max-message-size"] != "52428800" {
					t.Errorf("imap.yaml = %v, want a certificate and a 50 MiB message limit", imap)
				}
				secrets := secretNames(objs)
				if !secrets["release-name-mailstore-redis"] || !secrets["release-name-mailstore-s3"] || !secrets["release-name-mailstore-grpc"] || secrets["release-name-mailstore-tls"] {
					t.Errorf("Secrets %v, want the Redis, S3 and gRPC token ones and no TLS one (existingSecret)", secrets)
				}
				d := findDeployment(objs, "release-name-mailstore-imap")
				if v := findVolume(d.Spec.Template.Spec, "tls"); v == nil || v.Secret == nil || v.Secret.SecretName != "mail-example-org-tls" {
					t.Errorf("IMAP pods do not mount the cert-manager Secret: %+v", v)
				}
			},
		},
		{
			name:   "sentinel-existing-secrets",
			values: []string{"sentinel-existing-secrets-values.yaml"},
			want: expect{targets: all, preStop: 10, window: 20, margin: 15, networkPolicies: true, tls: true,
				gatewayServiceType: corev1.ServiceTypeLoadBalancer},
			check: func(t *testing.T, objs *objects) {
				meta := configOf(t, objs, "metadata")
				if meta["metadata.redis.master-name"] != "mymaster" || meta["metadata.redis.cluster"] != "false" || meta["metadata.redis.db"] != "2" {
					t.Errorf("metadata.yaml = %v, want Sentinel master mymaster, db 2", meta)
				}
				if len(objs.Secrets) != 0 {
					t.Errorf("Secrets rendered although all are existing: %v", secretNames(objs))
				}
				d := findDeployment(objs, "release-name-mailstore-metadata")
				v := findVolume(d.Spec.Template.Spec, "redis-auth")
				if v == nil || v.Secret.SecretName != "mailstore-redis-auth" || v.Secret.Items[0].Key != "redis-password" {
					t.Errorf("metadata pods mount %+v, want key redis-password of mailstore-redis-auth", v)
				}
				b := findDeployment(objs, "release-name-mailstore-blob")
				v = findVolume(b.Spec.Template.Spec, "s3-auth")
				if v == nil || v.Secret.SecretName != "mailstore-s3-auth" || len(v.Secret.Items) != 2 || v.Secret.Items[0].Key != "AWS_ACCESS_KEY_ID" {
					t.Errorf("blob pods mount %+v, want the keys of mailstore-s3-auth", v)
				}
				if v := findVolume(d.Spec.Template.Spec, "grpc-token"); v == nil || v.Secret.SecretName != "mailstore-grpc-token" || v.Secret.Items[0].Key != "shared-token" {
					t.Errorf("pods mount %+v, want key shared-token of mailstore-grpc-token", v)
				}
				if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "mailstore" {
					t.Errorf("serviceAccountName %q, want the existing mailstore", sa)
				}
				for _, o := range objs.Other {
					if o.GetObjectKind().GroupVersionKind().Kind == "ServiceAccount" {
						t.Error("a ServiceAccount is rendered although serviceAccount.create is false")
					}
				}
			},
		},
		{
			name:   "minimal",
			values: []string{"minimal-values.yaml"},
			want:   expect{targets: []string{"metadata", "blob", "imap"}, preStop: 10, window: 20, margin: 15, gatewayServiceType: corev1.ServiceTypeClusterIP},
			check: func(t *testing.T, objs *objects) {
				if len(objs.PDBs) != 0 {
					t.Errorf("%d PodDisruptionBudgets, want none", len(objs.PDBs))
				}
				if findDeployment(objs, "mail-imap") == nil {
					t.Error("fullnameOverride mail: no Deployment mail-imap")
				}
				imap := configOf(t, objs, "imap")
				if imap["metadata.address"] != "dns:///mail-metadata.mail.svc.cluster.local:9201" {
					t.Errorf("imap.yaml: metadata.address = %q", imap["metadata.address"])
				}
			},
		},
		{
			name: "inline-tls-and-drain",
			extra: map[string]any{
				"tls":    map[string]any{"enabled": true, "cert": cert.cert, "key": cert.key},
				"drain":  map[string]any{"preStopSeconds": 5, "windowSeconds": 600, "marginSeconds": 30},
				"config": map[string]any{"log.level": "debug"},
				"imap": map[string]any{"config": map[string]any{"imap.idle-timeout": "29m", "imap.max-connections-per-ip": 100},
					"extraArgs": []string{"-log.format=text"}},
			},
			want: expect{targets: all, preStop: 5, window: 600, margin: 30, networkPolicies: true, tls: true, gatewayServiceType: corev1.ServiceTypeLoadBalancer},
			check: func(t *testing.T, objs *objects) {
				secrets := secretNames(objs)
				if !secrets["release-name-mailstore-tls"] {
					t.Errorf("no TLS Secret from the inline certificate: %v", secrets)
				}
				for _, s := range objs.Secrets {
					if s.Type == corev1.SecretTypeTLS && (len(s.Data["tls.crt"]) == 0 || len(s.Data["tls.key"]) == 0) {
						t.Errorf("TLS Secret %s lacks tls.crt or tls.key", s.Name)
					}
				}
				imap := configOf(t, objs, "imap")
				if imap["imap.idle-timeout"] != "29m" || imap["log.level"] != "debug" || imap["imap.max-connections-per-ip"] != "100" {
					t.Errorf("imap.yaml = %v, want the extra flags", imap)
				}
				d := findDeployment(objs, "release-name-mailstore-imap")
				if !contains(d.Spec.Template.Spec.Containers[0].Args, "-log.format=text") {
					t.Errorf("imap args %v lack the extra argument", d.Spec.Template.Spec.Containers[0].Args)
				}
			},
		},
	}
}

// TestHelmChart lints and renders the chart for each value set and checks
// every object.
func TestHelmChart(t *testing.T) {
	chart := chartDir(t)
	for _, tc := range helmCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, v := range tc.values {
				args = append(args, "-f", filepath.Join(chart, "ci", v))
			}
			if tc.extra != nil {
				data, err := yaml.Marshal(tc.extra)
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(t.TempDir(), "values.yaml")
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-f", p)
			}
			if out, errOut, err := helm(t, append([]string{"lint", "--strict", "--kube-version", kubeVersion, chart}, args...)...); err != nil {
				t.Fatalf("helm lint --strict: %v\n%s%s", err, out, errOut)
			}
			out, errOut, err := helm(t, append([]string{"template", "--kube-version", kubeVersion, "--namespace", "mail", chart}, args...)...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, errOut)
			}
			objs := decodeAll(t, []byte(out))
			checkObjects(t, objs, tc.want)
			if tc.check != nil {
				tc.check(t, objs)
			}
		})
	}
}

// TestHelmSchemaRejects renders value sets that values.schema.json (or a
// template's own check) must reject, each with the message it must give.
func TestHelmSchemaRejects(t *testing.T) {
	chart := chartDir(t)
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad value sets under testdata/bad: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatalf("%s must start with '# want: <part of the error>'", f)
			}
			for _, cmd := range [][]string{
				{"template", "--kube-version", kubeVersion, chart, "-f", f},
				{"lint", "--strict", "--kube-version", kubeVersion, chart, "-f", f},
			} {
				out, errOut, err := helm(t, cmd...)
				if err == nil {
					t.Errorf("helm %s accepted %s", cmd[0], f)
					continue
				}
				if !strings.Contains(out+errOut, want) {
					t.Errorf("helm %s failed without naming %q:\n%s%s", cmd[0], want, out, errOut)
				}
			}
		})
	}
}

// configOf returns a target's -config file as flat strings.
func configOf(t *testing.T, objs *objects, target string) map[string]string {
	t.Helper()
	cfg, ok := configFiles(t, objs)[target+".yaml"]
	if !ok {
		t.Fatalf("no %s.yaml in any ConfigMap", target)
	}
	return cfg
}

func secretNames(objs *objects) map[string]bool {
	out := map[string]bool{}
	for _, s := range objs.Secrets {
		out[s.Name] = true
	}
	return out
}

type pemPair struct{ cert, key string }

// testCert makes a throwaway self-signed certificate, so that no key is
// checked in.
func testCert(t *testing.T) pemPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mail.example.org"},
		DNSNames:     []string{"mail.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemPair{
		cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		key:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})),
	}
}
